"""Confidence across a run: the per-question columns, their aggregates, how well answer confidence separates
correct from incorrect answers (AUROC) and how calibrated it is (ECE), and what early pruning saved and cost.

Correctness labels come from the judge's `answer_correctness/v1` (4 or 5 of 5 is correct) when a judge scored the
answer, else from an exact match of the answer's yes/no/maybe decision with the gold `final_decision`. When
the agent abstained for low confidence the judge saw the abstention, not the scored answer, so that answer
is labelled by its decision. Every metric that cannot be computed is returned as skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from processing.confidence.assessment import NO_LOGPROBS, AnswerAssessment
from processing.confidence.auroc_interval import auroc_interval
from processing.confidence.measures import CalibrationReport, calibration_report

JUDGE_CORRECT_AT = 4  # answer_correctness/v1 on 1-5: 4 is "mostly correct", 3 still has omissions or errors
PRUNING_COMPARED = ("token_f1", "answer_embedding_cosine", "decision_accuracy")
CONFIDENCE_COLUMNS = tuple(AnswerAssessment(unavailable_reason=NO_LOGPROBS).record())
NO_LABEL = "no answer started with a yes/no/maybe label that had top-k alternatives"
MEAN_MEASURES = {  # run metric -> per-question column averaged over the answers that have it
    "mean_sequence_confidence": ("answer_sequence_confidence", "no answer had scored tokens"),
    "mean_decision_label_confidence": ("decision_label_confidence", NO_LABEL),
    "mean_reasoning_confidence": ("reasoning_confidence", "no answer had a reasoning span"),
    "mean_prompt_clarity": ("prompt_clarity", "no answer had scored tokens"),
}
# confidence measure (the run config's `confidence_measure`) -> its per-question column
MEASURE_COLUMNS = {"sequence_confidence": "answer_sequence_confidence", "decision_label": "decision_label_confidence"}
AUROC_DETAILS = ("auroc_ci_low", "auroc_ci_high", "auroc_correct_count", "auroc_incorrect_count")
SEPARATION_METRICS = tuple(f"{m}_{kind}" for m in MEASURE_COLUMNS for kind in ("auroc", "ece", *AUROC_DETAILS))
UNINFORMATIVE_SHARE = 0.9  # flags on (or off) for at least this share of answers tell answers apart no better
CONFIDENCE_METRICS = (
    *MEAN_MEASURES,
    "flagged_answer_share",
    "confidence_retry_rate",
    "confidence_abstain_rate",
    "confidence_labelled_count",
    "confidence_ece",
    "confidence_auroc",
    *(f"confidence_{kind}" for kind in AUROC_DETAILS),
    *SEPARATION_METRICS,
)
PRUNING_METRICS = (
    "prompt_tokens_saved_total",
    "prompt_tokens_saved_mean",
    "pruning_net_tokens_saved_total",
    "pruned_context_share",
    *(f"pruning_{name}_change" for name in PRUNING_COMPARED),
)


def correctness_label(
    answer: Mapping[str, Any], gold_decision: str, judge_correctness: int | None
) -> tuple[bool | None, str]:
    """(is the generated answer correct, where the label came from); None when nothing was generated."""
    if judge_correctness is not None and not answer["abstained"]:
        return judge_correctness >= JUDGE_CORRECT_AT, "judge"
    if answer["candidate_decision"] is not None:
        return answer["candidate_decision"] == gold_decision, "decision_match"
    return None, "unlabelled"


def question_columns(
    answer: Mapping[str, Any], label: tuple[bool | None, str], baseline_scores: Mapping[str, float] | None
) -> dict[str, Any]:
    """The confidence, routing and pruning columns of one question in the per-question table."""
    confidence = answer["confidence"] or {}
    pruning = answer["pruning"] or {}
    return {
        "confidence_route": answer["confidence_route"],
        **{column: confidence.get(column) for column in CONFIDENCE_COLUMNS},
        "retries": answer["retries"],
        "final_top_k": answer["final_top_k"],
        "abstained": answer["abstained"],
        "abstain_reason": answer["abstain_reason"],
        "candidate_decision": answer["candidate_decision"],
        "correct": label[0],
        "correct_label_source": label[1],
        "pruning_skipped": pruning.get("skipped"),
        "contexts_in": pruning.get("contexts_in"),
        "contexts_kept": pruning.get("contexts_kept"),
        "prompt_tokens_saved": pruning.get("prompt_tokens_saved"),
        "net_tokens_saved": pruning.get("net_tokens_saved"),
        "token_count_method": pruning.get("token_count_method"),
        "baseline_decision": pruning.get("baseline_decision"),
        **{f"baseline_{name}": (baseline_scores or {}).get(name) for name in PRUNING_COMPARED},
    }


@dataclass(frozen=True)
class ConfidenceSummary:
    metrics: dict[str, float]
    skipped: dict[str, str]
    labelled: tuple[tuple[float, bool], ...]  # (answer confidence, correct) per labelled, scored answer
    calibration: CalibrationReport | None
    label_sources: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # signals that carry no information on this run, and why


def _labelled(scored: Sequence[Mapping[str, Any]], column: str) -> tuple[tuple[float, bool], ...]:
    return tuple(
        (row[column], bool(row["correct"])) for row in scored if row[column] is not None and row["correct"] is not None
    )


def _separation(
    labelled: Sequence[tuple[float, bool]], prefix: str, acted_on: bool = False
) -> tuple[dict[str, float], dict[str, str], CalibrationReport | None, list[str]]:
    """`<prefix>_auroc` with its bootstrap interval and class counts, and `<prefix>_ece`, of one measure against
    the correctness labels; plus a warning when the AUROC's interval does not lie above 0.5, which names the
    measure the agent acts on as such."""
    auroc_names = (f"{prefix}_auroc", *(f"{prefix}_{kind}" for kind in AUROC_DETAILS))
    if not labelled:
        return {}, dict.fromkeys((f"{prefix}_ece", *auroc_names), "no scored answer has a correctness label"), None, []
    confidences, correct = zip(*labelled, strict=True)
    calibration = calibration_report(confidences, correct)
    metrics, skipped = {f"{prefix}_ece": calibration.expected_calibration_error}, {}
    try:
        interval = auroc_interval(confidences, correct)
    except ValueError as error:  # one class only: AUROC is undefined
        return metrics, dict.fromkeys(auroc_names, str(error)), calibration, []
    metrics |= {
        f"{prefix}_auroc": interval.auroc,
        f"{prefix}_auroc_correct_count": float(interval.correct),
        f"{prefix}_auroc_incorrect_count": float(interval.incorrect),
    }
    if interval.low is None or interval.high is None:
        skipped |= dict.fromkeys(auroc_names[1:3], "fewer than two answers in a class: nothing to resample")
    else:
        metrics |= {f"{prefix}_auroc_ci_low": interval.low, f"{prefix}_auroc_ci_high": interval.high}
    warning = interval.warning(f"{prefix}_auroc" + (" (the measure the agent acts on)" if acted_on else ""))
    return metrics, skipped, calibration, [warning] if warning else []


def summarize(
    table: Sequence[Mapping[str, Any]], *, prune_contexts: bool, measure: str = "sequence_confidence"
) -> ConfidenceSummary:
    """Run aggregates over the per-question table (its rows carry the answer metrics and the columns above).

    Rates are shares of the questions whose answer confidence was scored. `confidence_auroc` and
    `confidence_ece` are those of `measure`, the one the agent acted on; every measure also gets its own.
    """
    scored = [row for row in table if row["confidence_available"]]
    metrics, skipped = _confidence(table, scored, MEASURE_COLUMNS[measure])
    labelled, calibration = (), None
    warnings = _flag_warnings(metrics)
    if scored:
        for name, column in MEASURE_COLUMNS.items():
            pairs = _labelled(scored, column)
            measured, missing, report, said = _separation(pairs, name, acted_on=name == measure)
            metrics |= measured
            skipped |= missing
            warnings += said
            if name == measure:
                labelled, calibration = pairs, report
                metrics |= {k.replace(name, "confidence", 1): v for k, v in measured.items()}
                skipped |= {k.replace(name, "confidence", 1): v for k, v in missing.items()}
    pruning_metrics, pruning_skipped = _pruning(table, prune_contexts)
    return ConfidenceSummary(
        metrics=metrics | pruning_metrics,
        skipped=skipped | pruning_skipped,
        labelled=labelled,
        calibration=calibration,
        label_sources=tuple(sorted({row["correct_label_source"] for row in scored if row["correct"] is not None})),
        warnings=tuple(warnings),
    )


def _flag_warnings(metrics: Mapping[str, float]) -> list[str]:
    """The low-confidence token flags tell answers apart only when some answers have them and some do not."""
    share = metrics.get("flagged_answer_share")
    if share is None or UNINFORMATIVE_SHARE > share > 1 - UNINFORMATIVE_SHARE:
        return []
    which = "nearly every" if share >= UNINFORMATIVE_SHARE else "nearly no"
    return [
        f"flagged_answer_share {share:.2f}: {which} answer has a low-confidence token flag, "
        "so the flags carry no information on this run"
    ]


def _confidence(
    table: Sequence[Mapping[str, Any]], scored: Sequence[Mapping[str, Any]], acted_on: str
) -> tuple[dict[str, float], dict[str, str]]:
    """Means, rates, and how many answers the acted-on measure (`acted_on`, its column) scored and labelled."""
    if not scored:
        reasons = sorted({r["confidence_unavailable_reason"] for r in table if r["confidence_unavailable_reason"]})
        return {}, dict.fromkeys(
            CONFIDENCE_METRICS, f"confidence unavailable ({'; '.join(reasons) or 'no answer was generated'})"
        )
    metrics: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name, (column, missing) in MEAN_MEASURES.items():
        values = [row[column] for row in scored if row[column] is not None]
        if values:
            metrics[name] = fmean(values)
        else:
            skipped[name] = missing
    metrics["flagged_answer_share"] = fmean(row["flagged_span_count"] > 0 for row in scored)
    metrics["confidence_retry_rate"] = fmean(row["retries"] > 0 for row in scored)
    metrics["confidence_abstain_rate"] = fmean(row["confidence_route"] == "abstain" for row in scored)
    metrics["confidence_labelled_count"] = float(
        sum(row[acted_on] is not None and row["correct"] is not None for row in scored)
    )
    return metrics, skipped


def _pruning(table: Sequence[Mapping[str, Any]], prune_contexts: bool) -> tuple[dict[str, float], dict[str, str]]:
    """Tokens saved over every pruned question; answer-metric change (pruned minus unpruned baseline) over the
    pruned questions the agent did not abstain on, since an abstention replaced the pruned answer."""
    if not prune_contexts:
        return {}, dict.fromkeys(PRUNING_METRICS, "prune_contexts is off")
    pruned = [row for row in table if row["contexts_kept"] is not None]
    if not pruned:
        reasons = sorted({row["pruning_skipped"] for row in table if row["pruning_skipped"]})
        return {}, dict.fromkeys(PRUNING_METRICS, f"no question was pruned ({'; '.join(reasons) or 'none answered'})")
    saved = [row["prompt_tokens_saved"] for row in pruned]
    metrics = {
        "prompt_tokens_saved_total": float(sum(saved)),
        "prompt_tokens_saved_mean": fmean(saved),
        "pruned_context_share": 1 - sum(r["contexts_kept"] for r in pruned) / sum(r["contexts_in"] for r in pruned),
    }
    net = [row["net_tokens_saved"] for row in pruned]
    if None in net:
        skipped = {"pruning_net_tokens_saved_total": "the generator did not report token counts for every call"}
    else:
        metrics["pruning_net_tokens_saved_total"] = float(sum(net))
        skipped = {}
    compared = [row for row in pruned if not row["abstained"] and row["baseline_token_f1"] is not None]
    changes = [f"pruning_{name}_change" for name in PRUNING_COMPARED]
    if not compared:
        return metrics, skipped | dict.fromkeys(changes, "every pruned answer was replaced by an abstention")
    for name, change in zip(PRUNING_COMPARED, changes, strict=True):
        metrics[change] = fmean(row[name] - row[f"baseline_{name}"] for row in compared)
    return metrics, skipped
