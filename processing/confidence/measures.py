"""Confidence measures over token log-probabilities.

Each measure returns None when it cannot be computed (no tokens, no top-k alternatives): an unknown
confidence must never read as a perfect or a zero one. Probabilities are natural-log based throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from sklearn.metrics import roc_auc_score

from processing.confidence.reasoning import split_reasoning_tokens
from processing.interfaces import TokenLogprobs


def mean_logprob(logprobs: TokenLogprobs) -> float | None:
    """Average log-probability per token: the length-normalised sequence score."""
    return math.fsum(logprobs.logprobs) / len(logprobs.logprobs) if logprobs.logprobs else None


def sum_logprob(logprobs: TokenLogprobs) -> float | None:
    """Log-probability of the whole sequence (favours short answers; compare only equal lengths)."""
    return math.fsum(logprobs.logprobs) if logprobs.logprobs else None


def perplexity(logprobs: TokenLogprobs) -> float | None:
    """exp(-mean logprob): 1 for a certain sequence, growing with uncertainty."""
    mean = mean_logprob(logprobs)
    return None if mean is None else math.exp(-mean)


def sequence_confidence(logprobs: TokenLogprobs) -> float | None:
    """Geometric-mean token probability, exp(mean logprob), in [0, 1]: the score calibrated and thresholded."""
    mean = mean_logprob(logprobs)
    return None if mean is None else math.exp(mean)


def min_token_prob(logprobs: TokenLogprobs) -> float | None:
    """Probability of the least likely token: one guessed fact can hide in an otherwise fluent answer."""
    return math.exp(min(logprobs.logprobs)) if logprobs.logprobs else None


def mean_token_entropy(logprobs: TokenLogprobs) -> float | None:
    """Mean over positions of -sum p ln p across the returned top-k alternatives (nats).

    Only the top-k are known, so this is a lower bound on the full-vocabulary entropy; positions with fewer
    than two alternatives carry no spread and are skipped. None without alternatives.
    """
    entropies = [
        -math.fsum(math.exp(lp) * lp for _, lp in candidates if lp > -math.inf)
        for candidates in logprobs.alternatives or ()
        if len(candidates) >= 2
    ]
    return math.fsum(entropies) / len(entropies) if entropies else None


def mean_top_margin(logprobs: TokenLogprobs) -> float | None:
    """Mean probability gap between the two most likely alternatives: small gaps mean a near coin-flip."""
    margins = []
    for candidates in logprobs.alternatives or ():
        if len(candidates) >= 2:
            first, second = sorted((lp for _, lp in candidates), reverse=True)[:2]
            margins.append(math.exp(first) - math.exp(second))
    return math.fsum(margins) / len(margins) if margins else None


SEQUENCE_MEASURES: Mapping[str, Callable[[TokenLogprobs], float | None]] = MappingProxyType(
    {
        "mean_logprob": mean_logprob,
        "sum_logprob": sum_logprob,
        "perplexity": perplexity,
        "sequence_confidence": sequence_confidence,
        "min_token_prob": min_token_prob,
        "mean_token_entropy": mean_token_entropy,
        "mean_top_margin": mean_top_margin,
    }
)


def score_sequence(logprobs: TokenLogprobs) -> dict[str, float | None]:
    """Every registered measure by name, for one completion (None where not computable)."""
    return {name: measure(logprobs) for name, measure in SEQUENCE_MEASURES.items()}


@dataclass(frozen=True)
class LowConfidenceSpan:
    """Characters [start, end) of "".join(tokens), widened to whole words, flagged as possibly hallucinated."""

    text: str
    start: int
    end: int
    first_token: int
    last_token: int
    min_prob: float


def low_confidence_spans(logprobs: TokenLogprobs, threshold: float = 0.3) -> list[LowConfidenceSpan]:
    """Runs of tokens with probability below `threshold`, widened to word boundaries and merged when they touch."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    tokens = logprobs.tokens
    text = "".join(tokens)
    starts = np.cumsum([0, *map(len, tokens)])
    flagged = [math.exp(lp) < threshold for lp in logprobs.logprobs]
    spans: list[tuple[int, int, float]] = []  # (start, end, min prob) per run of flagged tokens
    i = 0
    while i < len(tokens):
        if not flagged[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and flagged[j + 1]:
            j += 1
        start, end = _trim_whitespace(text, int(starts[i]), int(starts[j + 1]))
        if start < end:
            start, end = _widen_to_words(text, start, end)
            lowest = min(logprobs.logprobs[t] for t in range(i, j + 1) if tokens[t].strip())
            spans.append((start, end, math.exp(lowest)))
        i = j + 1
    ranges: list[list] = []  # touching or overlapping word ranges merged: [start, end, min prob]
    for start, end, prob in spans:
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
            ranges[-1][2] = min(ranges[-1][2], prob)
        else:
            ranges.append([start, end, prob])
    return [
        LowConfidenceSpan(
            text=text[start:end],
            start=start,
            end=end,
            first_token=int(np.searchsorted(starts, start, side="right") - 1),
            last_token=int(np.searchsorted(starts, end, side="left") - 1),
            min_prob=prob,
        )
        for start, end, prob in ranges
    ]


def _trim_whitespace(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return start, end


@dataclass(frozen=True)
class RankedCandidate:
    index: int
    score: float | None


def rank_candidates(candidates: Sequence[TokenLogprobs | None], length_penalty: float = 1.0) -> list[RankedCandidate]:
    """Order n candidate completions best first by sum logprob / length**length_penalty.

    The default 1.0 is the mean logprob, so long answers are not punished for being long; 0 ranks by raw
    sum. Candidates without log-probabilities (or tokens) have no score and rank last, in input order.
    """
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    ranked = [
        RankedCandidate(index, None if not c or not c.logprobs else sum_logprob(c) / len(c.logprobs) ** length_penalty)
        for index, c in enumerate(candidates)
    ]
    return sorted(ranked, key=lambda r: (r.score is None, -(r.score or 0.0), r.index))


def prompt_clarity(logprobs: TokenLogprobs, k: int = 5) -> float | None:
    """Geometric-mean probability of the first k answer tokens (after any `</think>`).

    A clear, well-grounded prompt lets the model start its answer confidently; hesitation in the first
    tokens flags an ambiguous question or unhelpful context. None when the answer has no tokens.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    answer = split_reasoning_tokens(logprobs).answer
    first = [lp for token, lp in zip(answer.tokens, answer.logprobs, strict=True) if token.strip()][:k]
    return math.exp(math.fsum(first) / len(first)) if first else None


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class CalibrationReport:
    """Reliability diagram bins and expected calibration error (count-weighted |accuracy - confidence|)."""

    bins: tuple[ReliabilityBin, ...]
    expected_calibration_error: float
    n: int


def calibration_report(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> CalibrationReport:
    """Equal-width bins over [0, 1] (the last includes 1.0); empty bins are reported with count 0."""
    scores, labels = _scored_labels(confidences, correct)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if np.any((scores < 0.0) | (scores > 1.0)):
        bad = int(np.flatnonzero((scores < 0.0) | (scores > 1.0))[0])
        raise ValueError(f"confidences[{bad}] = {scores[bad]} is outside [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.minimum(np.digitize(scores, edges[1:-1], right=False), n_bins - 1)
    bins, error = [], 0.0
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        confidence = float(scores[members].mean()) if count else None
        accuracy = float(labels[members].mean()) if count else None
        if count:
            error += count / len(scores) * abs(accuracy - confidence)
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, confidence, accuracy))
    return CalibrationReport(bins=tuple(bins), expected_calibration_error=error, n=len(scores))


def auroc(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Probability that a correct answer gets higher confidence than an incorrect one (ties count one half)."""
    scores, labels = _scored_labels(confidences, correct)
    if labels.all() or not labels.any():
        only = "correct" if labels.any() else "incorrect"
        raise ValueError(f"AUROC needs both correct and incorrect answers; all {len(labels)} are {only}")
    return float(roc_auc_score(labels, scores))


def _scored_labels(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness labels")
    if not len(confidences):
        raise ValueError("no scored answers")
    scores = np.asarray(confidences, dtype=float)
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"confidences[{bad}] is not a finite number: {scores[bad]}")
    return scores, np.asarray([bool(label) for label in correct])
