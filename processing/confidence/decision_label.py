"""The probability the model puts on its yes/no/maybe decision, read at the label token.

The answer prompt asks for the label first, so the first worded token of the answer is where the model picks
it. Its top-k alternatives are grouped by the label they spell ("Yes", " yes" and "YES" are one label; a token
that is a prefix of exactly one label, such as "May" for "maybe", counts for it) and normalised over the three
labels: the chosen label's share is the confidence. Sequence measures average over every token of the
explanation too; this one looks only at the decision that is scored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from processing.interfaces import TokenLogprobs

LABELS = ("yes", "no", "maybe")
_LEADING_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class LabelConfidence:
    label: str  # the label the answer starts with
    probability: float  # its share of the probability on the three labels, in [0, 1]
    label_mass: float  # probability on any label at that position (how much the model wanted a label at all)
    token_index: int


def label_of(token: str) -> str | None:
    """The label a token spells, or None; a prefix counts when it belongs to one label only."""
    word = _LEADING_WORD.match(token.strip(" \t\n*_\"'`([{:-"))
    if word is None:
        return None
    text = word.group().lower()
    matches = [label for label in LABELS if label == text or (len(text) >= 2 and label.startswith(text))]
    return matches[0] if len(matches) == 1 else None


def decision_label_confidence(answer: TokenLogprobs) -> LabelConfidence | None:
    """None when the answer does not start with a label, or the server returned no top-k alternatives."""
    if not answer.alternatives:
        return None
    for index, token in enumerate(answer.tokens):
        if not _LEADING_WORD.search(token):
            continue  # whitespace, markup or punctuation before the first word
        label = label_of(token)
        if label is None:
            return None
        if not answer.alternatives[index]:
            return None  # the label token alone carries no distribution to normalise
        mass = dict.fromkeys(LABELS, 0.0)
        candidates = dict(answer.alternatives[index])
        candidates.setdefault(token, answer.logprobs[index])
        for candidate, logprob in candidates.items():
            if (candidate_label := label_of(candidate)) is not None:
                mass[candidate_label] += math.exp(logprob)
        total = math.fsum(mass.values())
        return LabelConfidence(label, mass[label] / total, min(total, 1.0), index)
    return None
