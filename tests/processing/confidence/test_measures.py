"""Confidence measures on small cases computed by hand; None (not 0) whenever a measure has nothing to measure."""

from __future__ import annotations

import math

import pytest

from processing.confidence.measures import (
    SEQUENCE_MEASURES,
    auroc,
    calibration_report,
    low_confidence_spans,
    mean_logprob,
    mean_token_entropy,
    mean_top_margin,
    min_token_prob,
    perplexity,
    prompt_clarity,
    rank_candidates,
    score_sequence,
    sequence_confidence,
    sum_logprob,
)
from processing.interfaces import TokenLogprobs

ln = math.log


def _lp(probs: list[float], tokens: list[str] | None = None, alternatives=None) -> TokenLogprobs:
    tokens = tokens or [f"t{i}" for i in range(len(probs))]
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(ln(p) for p in probs),
        token_ids=(None,) * len(probs),
        alternatives=alternatives,
    )


def test_sequence_scores_by_hand() -> None:
    seq = _lp([0.5, 0.25, 1.0])  # product 1/8 over 3 tokens: geometric mean 1/2
    assert sum_logprob(seq) == pytest.approx(ln(0.125))
    assert mean_logprob(seq) == pytest.approx(ln(0.125) / 3)
    assert sequence_confidence(seq) == pytest.approx(0.5)
    assert perplexity(seq) == pytest.approx(2.0)
    assert min_token_prob(seq) == pytest.approx(0.25)


def test_entropy_and_margin_from_alternatives() -> None:
    alternatives = (
        (("a", ln(0.5)), ("b", ln(0.25))),
        (("c", ln(0.1)), ("d", ln(0.9))),  # unsorted on purpose
        (("e", ln(0.99)),),  # one alternative: no spread to measure, skipped
    )
    seq = _lp([0.5, 0.9, 0.99], alternatives=alternatives)
    expected_entropy = (ln(2) + -(0.9 * ln(0.9) + 0.1 * ln(0.1))) / 2
    assert mean_token_entropy(seq) == pytest.approx(expected_entropy)
    assert mean_top_margin(seq) == pytest.approx((0.25 + 0.8) / 2)


def test_every_measure_is_none_when_not_computable() -> None:
    assert set(score_sequence(_lp([]))) == set(SEQUENCE_MEASURES)
    assert all(value is None for value in score_sequence(_lp([])).values())
    without_alternatives = score_sequence(_lp([0.5, 0.5]))
    assert without_alternatives["mean_token_entropy"] is None
    assert without_alternatives["mean_top_margin"] is None
    assert without_alternatives["sequence_confidence"] == pytest.approx(0.5)


def test_low_confidence_runs_widen_to_words_with_offsets() -> None:
    tokens = [" The", " ac", "etyl", "sal", "icylic", " acid", " cures", " cancer", ".", " Done"]
    probs = [0.9, 0.1, 0.2, 0.9, 0.95, 0.9, 0.2, 0.25, 0.9, 0.1]
    spans = low_confidence_spans(_lp(probs, tokens), threshold=0.3)
    text = "".join(tokens)
    assert [(s.text, s.start, s.end, s.first_token, s.last_token) for s in spans] == [
        ("acetylsalicylic", 5, 20, 1, 4),
        ("cures cancer.", 26, 39, 6, 8),
        ("Done", 40, 44, 9, 9),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)
    assert [s.min_prob for s in spans] == pytest.approx([0.1, 0.2, 0.1])


def test_runs_inside_one_word_merge_and_whitespace_alone_is_not_flagged() -> None:
    spans = low_confidence_spans(_lp([0.1, 0.9, 0.05, 0.01, 0.9], [" hyper", "glyc", "emia", "\n", " ok"]), 0.3)
    assert [(s.text, s.min_prob) for s in spans] == [("hyperglycemia", pytest.approx(0.05))]
    assert low_confidence_spans(_lp([0.9, 0.95], [" all", " sure"]), 0.3) == []
    with pytest.raises(ValueError, match="threshold"):
        low_confidence_spans(_lp([0.5]), 0.0)


def test_ranking_is_length_normalised_and_puts_unscored_last() -> None:
    candidates = [_lp([0.6] * 2), _lp([0.9]), _lp([0.8] * 10), None, _lp([])]
    by_mean = rank_candidates(candidates)
    assert [r.index for r in by_mean] == [1, 2, 0, 3, 4]
    assert by_mean[1].score == pytest.approx(ln(0.8))
    assert by_mean[3].score is None
    by_sum = rank_candidates(candidates, length_penalty=0.0)
    assert [r.index for r in by_sum] == [1, 0, 2, 3, 4]


def test_ranking_ties_keep_input_order() -> None:
    assert [r.index for r in rank_candidates([_lp([0.5]), _lp([0.7]), _lp([0.5, 0.5])])] == [1, 0, 2]


def test_prompt_clarity_reads_the_first_answer_tokens_after_think() -> None:
    tokens = ["Maybe", " not", "</think>", "\n\n", "Yes", ",", " because", " x"]
    probs = [0.01, 0.01, 0.99, 0.99, 0.5, 0.8, 0.1, 0.1]
    assert prompt_clarity(_lp(probs, tokens), k=2) == pytest.approx(math.sqrt(0.5 * 0.8))
    assert prompt_clarity(_lp(probs, tokens), k=10) == pytest.approx((0.5 * 0.8 * 0.1 * 0.1) ** 0.25)
    assert prompt_clarity(_lp([0.9, 0.9], ["<think>", "Hmm"])) is None  # cut off before answering
    with pytest.raises(ValueError, match="k must be"):
        prompt_clarity(_lp(probs, tokens), k=0)


def test_calibration_bins_and_ece_by_hand() -> None:
    report = calibration_report([0.05, 0.15, 0.95, 0.92, 1.0], [False, False, True, False, True], n_bins=10)
    assert report.n == 5
    assert [b.count for b in report.bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert report.bins[2].mean_confidence is None
    assert report.bins[2].accuracy is None
    assert report.bins[9].accuracy == pytest.approx(2 / 3)
    assert report.bins[9].mean_confidence == pytest.approx(2.87 / 3)
    assert report.expected_calibration_error == pytest.approx((0.05 + 0.15 + abs(2 - 2.87)) / 5)
    assert calibration_report([1.0, 0.0], [True, False], n_bins=4).expected_calibration_error == 0.0


@pytest.mark.parametrize(
    ("confidences", "correct", "message"),
    [
        ([0.5, 1.2], [True, False], r"confidences\[1\] = 1.2 is outside"),
        ([0.5], [True, False], "1 confidences but 2"),
        ([], [], "no scored answers"),
        ([0.5, math.nan], [True, False], r"confidences\[1\] is not a finite"),
    ],
)
def test_calibration_rejects_bad_input(confidences, correct, message) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_report(confidences, correct)


def test_auroc_with_ties_by_hand() -> None:
    # positives {0.9, 0.3} vs negatives {0.8, 0.3}: wins 1 + 1 + 0 + 0.5 (tie) over 4 pairs
    assert auroc([0.9, 0.8, 0.3, 0.3], [True, False, True, False]) == pytest.approx(0.625)
    assert auroc([0.9, 0.1], [True, False]) == 1.0
    assert auroc([0.9, 0.1], [False, True]) == 0.0


def test_auroc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="all 3 are correct"):
        auroc([0.2, 0.5, 0.9], [True, True, True])
    with pytest.raises(ValueError, match="all 2 are incorrect"):
        auroc([0.2, 0.5], [False, False])
