"""RAGEvaluation: retrieval and answer metrics per question, their means, and the report the promotion gate reads."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from processing.agent.decision import decision_source
from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import QaRecord
from processing.interfaces import JudgeInput
from processing.metrics.confidence import ConfidenceSummary, correctness_label, question_columns, summarize
from processing.metrics.confidence_plots import (
    CONFIDENCE_PLOT,
    RELIABILITY_PLOT,
    confidence_vs_correctness,
    reliability_diagram,
)
from processing.metrics.gate import evaluate_gate
from processing.metrics.judge import JudgeSummary, summarize_judge
from processing.metrics.registry import DESCRIPTIONS, decision_distribution, majority_baseline, mean_scores, score_rows
from processing.metrics.row import EvalRow
from processing.pipelines.identity import run_identity
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
logger = logging.getLogger(__name__)
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


def question_table(
    records: Sequence[QaRecord],
    rows: Sequence[EvalRow],
    per_row: Sequence[Mapping[str, float]],
    answers: Sequence[dict],
    judged: JudgeSummary,
    baselines: Sequence[Mapping[str, float] | None],
) -> list[dict[str, Any]]:
    """One row per question: what was asked and retrieved, what came back, and every score on it."""
    by_id = {r.record_id: r for r in records}
    return [
        {
            "question_id": r.question_id,
            "question": by_id[r.question_id].question,
            "reference": r.reference,
            "retrieved_ids": [h["chunk_id"] for h in a["retrieved"]],
            "retrieved_scores": [h["score"] for h in a["retrieved"]],
            "contexts": list(a["contexts"]),
            "answer": r.answer,
            "decision": r.predicted_decision,
            "decision_source": decision_source(r.answer) if not a["abstained"] else "abstained",
            "gold_decision": r.gold_decision,
            **s,
            **j,
            **question_columns(a, correctness_label(a, r.gold_decision, c), b),
        }
        for r, s, a, j, c, b in zip(rows, per_row, answers, judged.columns, judged.correctness, baselines, strict=True)
    ]


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    from processing import tracking

    records = read_records(inputs["prepared"])
    gold = json.loads((inputs["chunks"] / GOLD_FILE).read_text(encoding="utf-8"))
    answers = list(read_jsonl(inputs["answers"] / ANSWERS_FILE))
    rows = build_rows(records, gold, answers, context, config.top_k)
    per_row = score_rows(rows)
    metrics = mean_scores(per_row)
    gold_decisions = [r.gold_decision for r in rows]
    majority_label, metrics["decision_accuracy_majority_baseline"] = majority_baseline(gold_decisions)
    predicted, warnings = decision_distribution(
        [r.predicted_decision for r in rows], gold_decisions, metrics["decision_accuracy"]
    )
    metrics |= predicted
    by_id = {r.record_id: r for r in records}
    judge = context.backends.judge()
    if judge is not None:
        logger.info(
            "  judging %d answers with %s (%s), %d calls at a time",
            len(answers),
            judge.model_id,
            judge.provider,
            judge.max_in_flight,
        )
    judged = summarize_judge(
        judge,
        [
            JudgeInput(
                by_id[a["question_id"]].question, a["answer"], tuple(a["contexts"]), by_id[a["question_id"]].long_answer
            )
            for a in answers
        ],
    )
    metrics.update(judged.metrics)
    skipped = dict(judged.skipped)
    table = question_table(
        records, rows, per_row, answers, judged, _baseline_scores(records, gold, answers, context, config.top_k)
    )
    summary = summarize(table, prune_contexts=config.prune_contexts, measure=config.confidence_measure)
    skipped.update(summary.skipped)
    warnings += summary.warnings
    _write_table(output_dir / PER_QUESTION_FILE, table)
    gate = evaluate_gate(metrics, config)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "identity": run_identity(os.environ),
        "mlflow_experiment": config.experiment_name,
        "mlflow_parent_run_id": context.parent.run_id,
        "run_config": config.model_dump(),
        "metrics": metrics,
        "confidence_metrics": summary.metrics,
        "skipped_metrics": skipped,
        "question_count": len(rows),
        "quality_gate": gate.record(),
        "warnings": warnings,  # numbers that say less than they seem to on this run, and why
    }
    mlflow.log_params(
        {
            "judge": config.judge,
            "judge_model": "none" if judge is None else judge.model_id,
            "judge_metrics": "mlflow.metrics.genai v1, 1-5" if judge is not None else "none",
            "judge_max_in_flight": 0 if judge is None else judge.max_in_flight,
            "decision_majority_label": majority_label,
            **{f"metric_{n}": d for n, d in DESCRIPTIONS.items()},
        }
    )
    mlflow.log_metrics(metrics | summary.metrics)
    mlflow.set_tags(
        {
            "ragops.quality_gate": gate.verdict,
            "ragops.quality_gate_failures": "; ".join(gate.failures) or "none",
            "ragops.quality_gate_not_checked": "; ".join(f"{m}: {w}" for m, w in gate.not_checked.items()) or "none",
            "ragops.warnings": (" | ".join(warnings) or "none")[: tracking.MAX_TAG_CHARS],
            **{f"skipped.{n}": r for n, r in skipped.items()},
        }
    )
    mlflow.log_table(data={k: [row[k] for row in table] for k in table[0]}, artifact_file=PER_QUESTION_TABLE)
    _log_confidence(summary, output_dir)
    write_json_atomic(output_dir / REPORT_FILE, report)
    mlflow.log_artifact(str(output_dir / REPORT_FILE))
    tracking.log_parent_metrics(context.parent, metrics | summary.metrics)
