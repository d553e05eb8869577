"""How sure an AUROC is: a seeded bootstrap interval and the class counts it rests on.

On 33 answers (16 right, 17 wrong) an AUROC of 0.335 has a 95% interval of about [0.15, 0.52]: the number alone
cannot say whether a confidence measure separates right from wrong answers. The interval is scipy's
`stats.bootstrap` (percentile method) with the correct and the incorrect answers resampled separately, so
every resample keeps both classes and their counts (a stratified bootstrap; AUROC is undefined on one class).
A fixed seed makes the interval reproducible run to run. With fewer than two answers in a class there is
nothing to resample, so there is no interval (None) and the AUROC is reported as not informative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from processing.confidence.measures import auroc

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20240531
BATCH = 250  # resamples per vectorised call: bounds memory at batch x answers
CHANCE = 0.5


@dataclass(frozen=True)
class AurocInterval:
    auroc: float
    low: float | None
    high: float | None
    correct: int
    incorrect: int
    level: float = LEVEL

    def warning(self, name: str) -> str | None:
        """Why `name` does not show a separation on this run (None when the interval lies above 0.5)."""
        counts = f"{self.correct} correct and {self.incorrect} incorrect answers"
        if self.low is None or self.high is None:
            return f"{name} {self.auroc:.3f} on {counts}: too few in one class for an interval, so not informative"
        if self.low > CHANCE:
            return None
        where = "lies below" if self.high < CHANCE else "includes"
        return (
            f"{name} {self.auroc:.3f}, {self.level:.0%} interval [{self.low:.3f}, {self.high:.3f}] on {counts}: "
            f"the interval {where} 0.5 (chance), so this confidence signal is not informative on this run"
        )


def _mann_whitney_auroc(correct: np.ndarray, incorrect: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(a correct answer's confidence > an incorrect one's), ties one half, per resample along `axis`: the
    Mann-Whitney U of the correct answers over the number of pairs, from ranks (no pairwise comparison table).
    The asymptotic method only spares the exact p-value, which is not used."""
    u = stats.mannwhitneyu(correct, incorrect, axis=axis, method="asymptotic").statistic
    return u / (correct.shape[axis] * incorrect.shape[axis])


def auroc_interval(
    confidences: Sequence[float], correct: Sequence[bool], *, resamples: int = RESAMPLES, seed: int = SEED
) -> AurocInterval:
    """AUROC with its bootstrap interval; raises ValueError as `measures.auroc` does (one class, bad input)."""
    value = auroc(confidences, correct)
    scores = np.asarray(confidences, dtype=float)
    labels = np.asarray(correct, dtype=bool)
    right, wrong = scores[labels], scores[~labels]
    if min(len(right), len(wrong)) < 2:
        return AurocInterval(value, None, None, len(right), len(wrong))
    result = stats.bootstrap(
        (right, wrong),
        _mann_whitney_auroc,
        n_resamples=resamples,
        batch=BATCH,
        vectorized=True,
        confidence_level=LEVEL,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return AurocInterval(value, float(interval.low), float(interval.high), len(right), len(wrong))
