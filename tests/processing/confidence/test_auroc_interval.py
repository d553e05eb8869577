"""AUROC with a seeded bootstrap interval and its class counts, and the warning when it says nothing."""

import numpy as np
import pytest

from processing.confidence.auroc_interval import auroc_interval
from processing.confidence.measures import auroc


def test_the_interval_is_reproducible_brackets_the_auroc_and_counts_each_class() -> None:
    rng = np.random.default_rng(7)
    confidences, correct = rng.random(33), rng.random(33) < 0.5
    first, again = auroc_interval(confidences, correct), auroc_interval(confidences, correct)
    assert first == again  # seeded: the same run gives the same interval
    assert first.auroc == pytest.approx(auroc(confidences, correct))  # scikit-learn's value
    assert first.low < first.auroc < first.high
    assert (first.correct, first.incorrect) == (int(correct.sum()), int((~correct).sum()))
    assert auroc_interval(confidences, correct, seed=1) != first  # the seed, not chance, fixes it


def test_an_interval_including_chance_warns_as_the_issue_case_did() -> None:
    """16 right and 17 wrong answers with an AUROC near 0.335: the interval reaches past 0.5."""
    right = [0.05 * i for i in range(16)]
    wrong = [0.05 * i + 0.12 for i in range(17)]
    interval = auroc_interval(right + wrong, [True] * 16 + [False] * 17)
    assert interval.auroc == pytest.approx(0.335, abs=0.001)
    assert interval.low < 0.5 <= interval.high
    warning = interval.warning("confidence_auroc")
    assert warning is not None
    assert "on 16 correct and 17 incorrect answers: the interval includes 0.5" in warning


def test_an_interval_below_chance_says_so_and_a_clear_separation_does_not_warn() -> None:
    below = auroc_interval([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9], [True] * 4 + [False] * 4)
    assert below.high < 0.5
    assert "the interval lies below 0.5" in (below.warning("x") or "")
    above = auroc_interval(
        [0.6 + 0.01 * i for i in range(20)] + [0.1 * i / 20 for i in range(20)], [True] * 20 + [False] * 20
    )
    assert above.low > 0.5
    assert above.warning("x") is None


def test_one_answer_in_a_class_gives_no_interval_and_one_class_no_auroc() -> None:
    single = auroc_interval([0.9, 0.8, 0.1], [True, True, False])
    assert (single.low, single.high) == (None, None)
    assert "too few in one class for an interval" in (single.warning("x") or "")
    with pytest.raises(ValueError, match="all 2 are correct"):
        auroc_interval([0.9, 0.8], [True, True])
