"""Judge metrics over a run: the mean, variance and p90 of the 1-5 scores, each metric's coverage, the row columns.

The mean, variance and p90 are taken here over the rows scored on the rubrics' 1-5 scale, not MLflow's
`aggregate_results`, which also average a parsed score off that scale (a "score: 10" the coverage rejects). A mean
over the rows that parsed is only as good as the share that parsed, so every metric logs its coverage
(`<metric>/coverage`: rows scored / rows) and `judge_coverage` is the lowest of them, which the quality gate
holds against `min_judge_coverage`. A metric no row could score gets no mean (skipped, with the reason) but
still its coverage of 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from processing.backends.mlflow_judge import JUDGE_METRICS
from processing.interfaces import Judge, JudgeInput, JudgeScores

CORRECTNESS = "answer_correctness/v1"
JUDGE_COVERAGE = "judge_coverage"
REASON_CHARS = 160  # of the first unscored row's reason, on one line
NOT_JUDGED = "not judged: judge=none (make run-judged, or --set judge=local|openai|bedrock, runs a judge)"


@dataclass(frozen=True)
class JudgeSummary:
    metrics: dict[str, float]
    skipped: dict[str, str]
    columns: list[dict[str, Any]]  # per row: `<metric>/score` and `<metric>/justification`
    correctness: list[int | None]  # per row: answer_correctness on 1-5, None when unscored

    @classmethod
    def without_judge(cls, rows: int) -> JudgeSummary:
        skipped = {f"{name}/mean": NOT_JUDGED for name in JUDGE_METRICS} | {JUDGE_COVERAGE: NOT_JUDGED}
        return cls({}, skipped, [{} for _ in range(rows)], [None] * rows)


def _aggregates(name: str, values: JudgeScores, rows: int) -> tuple[dict[str, float], dict[str, str]]:
    scored = [s for s in values.scores if s is not None]
    metrics = {f"{name}/coverage": len(scored) / rows if rows else 0.0}
    if not scored:
        first = next((" ".join(j.split()) for j in values.justifications if j), "no reply")
        return metrics, {f"{name}/mean": f"no row scored (first: {first[:REASON_CHARS]})"}
    metrics |= {
        f"{name}/mean": float(np.mean(scored)),
        f"{name}/variance": float(np.var(scored)),
        f"{name}/p90": float(np.percentile(scored, 90)),
    }
    return metrics, {}


def summarize_judge(judge: Judge | None, rows: Sequence[JudgeInput]) -> JudgeSummary:
    if judge is None:
        return JudgeSummary.without_judge(len(rows))
    returned: Mapping[str, JudgeScores] = judge.score(rows)
    metrics: dict[str, float] = {}
    skipped: dict[str, str] = {}
    columns: list[dict[str, Any]] = [{} for _ in rows]
    for name in JUDGE_METRICS:
        values = returned[name]
        if len(values.scores) != len(rows):
            raise ValueError(f"judge {judge.model_id} returned {len(values.scores)} {name} scores for {len(rows)} rows")
        measured, missing = _aggregates(name, values, len(rows))
        metrics |= measured
        skipped |= missing
        for column, score, why in zip(columns, values.scores, values.justifications, strict=True):
            column[f"{name}/score"] = score
            column[f"{name}/justification"] = why
    metrics[JUDGE_COVERAGE] = min(metrics[f"{name}/coverage"] for name in JUDGE_METRICS)
    return JudgeSummary(metrics, skipped, columns, list(returned[CORRECTNESS].scores))
