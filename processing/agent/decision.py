"""The yes/no/maybe decision an answer expresses.

An LLM answer is asked to start with the decision word; an answer that does not (the extractive baseline)
gets a lexical reading: negation cues mean "no", hedging cues mean "maybe", otherwise "yes".
"""

from __future__ import annotations

import re

DECISIONS = ("yes", "no", "maybe")
_NEGATION = re.compile(r"\b(no|not|never|neither|nor|cannot|without|none|fails?|failed|unlike)\b|n't\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(may|might|unclear|uncertain|possibly|depends|inconclusive|mixed|partly|partially)\b", re.I)


def decision_source(answer: str) -> str:
    """How `parse_decision` read the answer: its leading label, or keyword cues (a guess, not a statement)."""
    words = re.findall(r"[a-z']+", answer.lower())
    if not words:
        return "empty"
    return "leading label" if words[0] in DECISIONS else "keyword cues"


def parse_decision(answer: str) -> str | None:
    """The decision in `answer`, or None for an empty answer."""
    words = re.findall(r"[a-z']+", answer.lower())
    if not words:
        return None
    if words[0] in DECISIONS:
        return words[0]
    if _NEGATION.search(answer):
        return "no"
    if _HEDGE.search(answer):
        return "maybe"
    return "yes"
