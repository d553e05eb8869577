"""RAGEvaluation: retrieval and answer metrics per question, their means, and the report the promotion gate reads."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from statistics import fmean
from typing import Any

from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import QaRecord
from processing.interfaces import Judge, JudgeInput
from processing.metrics.confidence import ConfidenceSummary, correctness_label, question_columns, summarize
from processing.metrics.confidence_plots import (
    CONFIDENCE_PLOT,
    RELIABILITY_PLOT,
    confidence_vs_correctness,
    reliability_diagram,
)
from processing.metrics.registry import DESCRIPTIONS, JUDGE_METRICS, mean_scores, score_rows
from processing.metrics.row import EvalRow
from processing.stages.files import (
    ANSWERS_FILE,
    GOLD_FILE,
    PER_QUESTION_FILE,
    REPORT_FILE,
    read_jsonl,
    read_records,
    write_json_atomic,
)

REPORT_SCHEMA_VERSION = 1
PER_QUESTION_TABLE = "per_question.json"
CALIBRATION_FILE = "calibration.json"


def build_rows(
    records: Sequence[QaRecord], gold: Mapping[str, list[str]], answers: Sequence[dict], context: StageContext, k: int
) -> list[EvalRow]:
    by_id = {r.record_id: r for r in records}
    embedder = context.backends.embedder()
    answer_vectors = embedder.embed([a["answer"] for a in answers])
    reference_vectors = embedder.embed([by_id[a["question_id"]].long_answer for a in answers])
    return [
        EvalRow(
            question_id=a["question_id"],
            retrieved=tuple(h["chunk_id"] for h in a["retrieved"]),
            relevant=frozenset(gold[a["question_id"]]),
            k=k,
            answer=a["answer"],
            reference=by_id[a["question_id"]].long_answer,
            predicted_decision=a["decision"],
            gold_decision=by_id[a["question_id"]].final_decision,
            answer_vector=answer_vectors[i],
            reference_vector=reference_vectors[i],
        )
        for i, a in enumerate(answers)
    ]


def judge_scores(
    judge: Judge | None, rows: Sequence[JudgeInput]
) -> tuple[dict[str, float], dict[str, str], list[float | None]]:
    """(judge metric means, skipped judge metrics with the reason, per-row answer_correctness); never a zero for
    a missing score. A judge reports the names in JUDGE_METRICS, each score already scaled to [0, 1].
    """
    if judge is None:
        return {}, dict.fromkeys(JUDGE_METRICS, "no judge configured"), [None] * len(rows)
    returned = judge.score(rows)
    scores, skipped = {}, {}
    for name in JUDGE_METRICS:
        usable = [v for v in returned.get(name, []) if v is not None]
        if usable:
            scores[name] = fmean(usable)
        else:
            skipped[name] = f"judge {judge.model_id} returned no usable score"
    return scores, skipped, list(returned.get("answer_correctness") or [None] * len(rows))


def _write_table(path: Path, table: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def _baseline_scores(
    records: Sequence[QaRecord], gold: Mapping[str, list[str]], answers: Sequence[dict], context: StageContext, k: int
) -> list[dict[str, float] | None]:
    """Answer metrics of the unpruned baseline answer, per question that was pruned (None for the others)."""
    pruned = [i for i, a in enumerate(answers) if (a["pruning"] or {}).get("baseline_answer") is not None]
    baselines = [
        answers[i]
        | {"answer": answers[i]["pruning"]["baseline_answer"], "decision": answers[i]["pruning"]["baseline_decision"]}
        for i in pruned
    ]
    scores = score_rows(build_rows(records, gold, baselines, context, k)) if baselines else []
    by_index = dict(zip(pruned, scores, strict=True))
    return [by_index.get(i) for i in range(len(answers))]


def _log_confidence(summary: ConfidenceSummary, output_dir: Path) -> None:
    import mlflow
    from matplotlib import pyplot as plt

    mlflow.log_params({"confidence_label_source": "+".join(summary.label_sources) or "none"})
    if summary.calibration is not None:
        mlflow.log_dict(asdict(summary.calibration), CALIBRATION_FILE)
        for name, figure in (
            (CONFIDENCE_PLOT, confidence_vs_correctness(summary.labelled, summary.metrics.get("confidence_auroc"))),
            (RELIABILITY_PLOT, reliability_diagram(summary.calibration)),
        ):
            figure.savefig(output_dir / name, dpi=100)
            mlflow.log_figure(figure, name)
            plt.close(figure)


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    from processing import tracking

    records = read_records(inputs["prepared"])
    gold = json.loads((inputs["chunks"] / GOLD_FILE).read_text(encoding="utf-8"))
    answers = list(read_jsonl(inputs["answers"] / ANSWERS_FILE))
    rows = build_rows(records, gold, answers, context, config.top_k)
    per_row = score_rows(rows)
    metrics = mean_scores(per_row)
    by_id = {r.record_id: r for r in records}
    judged, skipped, correctness = judge_scores(
        context.backends.judge(),
        [
            JudgeInput(
                by_id[a["question_id"]].question, a["answer"], tuple(a["contexts"]), by_id[a["question_id"]].long_answer
            )
            for a in answers
        ],
    )
    metrics.update(judged)
    baselines = _baseline_scores(records, gold, answers, context, config.top_k)
    table = [
        {
            "question_id": r.question_id,
            "answer": r.answer,
            "decision": r.predicted_decision,
            "gold_decision": r.gold_decision,
            **s,
            **question_columns(a, correctness_label(a, r.gold_decision, judge), baseline),
        }
        for r, s, a, judge, baseline in zip(rows, per_row, answers, correctness, baselines, strict=True)
    ]
    summary = summarize(table, prune_contexts=config.prune_contexts, measure=config.confidence_measure)
    skipped.update(summary.skipped)
    _write_table(output_dir / PER_QUESTION_FILE, table)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "mlflow_experiment": config.experiment_name,
        "mlflow_parent_run_id": context.parent.run_id,
        "run_config": config.model_dump(),
        "metrics": metrics,
        "confidence_metrics": summary.metrics,
        "skipped_metrics": skipped,
        "question_count": len(rows),
    }
    gate = {"hit_at_k": config.min_hit_at_k, "mrr": config.min_mrr, "answer_similarity": config.min_answer_similarity}
    passed = all(metrics[name] >= minimum for name, minimum in gate.items())
    mlflow.log_params({"judge": config.judge, **{f"metric_{n}": d for n, d in DESCRIPTIONS.items()}})
    mlflow.log_metrics(metrics | summary.metrics)
    mlflow.set_tags(
        {"ragops.quality_gate": "passed" if passed else "failed", **{f"skipped.{n}": r for n, r in skipped.items()}}
    )
    mlflow.log_table(data={k: [row[k] for row in table] for k in table[0]}, artifact_file=PER_QUESTION_TABLE)
    _log_confidence(summary, output_dir)
    write_json_atomic(output_dir / REPORT_FILE, report)
    mlflow.log_artifact(str(output_dir / REPORT_FILE))
    tracking.log_parent_metrics(context.parent, metrics | summary.metrics)
