"""Reads back, from the tracking server $MLFLOW_TRACKING_URI names, the one pipeline run of an experiment that
`python -m processing run --mode multi` wrote: the parent and its six stage runs finished, one trace per question,
and the per-question table downloaded through the server. Exits non-zero naming what is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from processing.stages.registry import STAGES
from tests.processing.helpers import runs_of, traces_of


def problems(experiment: str) -> list[str]:
    client = MlflowClient()
    runs = runs_of(client.tracking_uri, experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if len(parents) != 1:
        return [f"expected one parent run in experiment '{experiment}', found {len(parents)}"]
    (parent,) = parents
    stages = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    found = [f"{name} {run.info.status}" for name, run in stages.items() if run.info.status != "FINISHED"]
    if parent.info.status != "FINISHED":
        found.append(f"parent run {parent.info.status}")
    if missing := {s.run_name for s in STAGES} - stages.keys():
        return [*found, f"stage runs missing: {sorted(missing)}"]
    questions = int(stages["RAGRetrieval"].data.metrics["question_count"])
    if (traced := len(traces_of(parent.info.experiment_id, stages["RAGRetrieval"].info.run_id))) != questions:
        found.append(f"{traced} traces for {questions} questions")
    table = client.download_artifacts(stages["RAGEvaluation"].info.run_id, "per_question.json")
    if (rows := len(json.loads(Path(table).read_text(encoding="utf-8"))["data"])) != questions:
        found.append(f"per_question.json has {rows} rows for {questions} questions")
    return found


if __name__ == "__main__":
    found = problems(sys.argv[1])
    print("\n".join(found) or f"experiment '{sys.argv[1]}': one multi-process run, every stage and trace in place")
    sys.exit(1 if found else 0)
