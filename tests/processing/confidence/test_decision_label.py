"""The decision-label confidence: the label token's probability, grouped by label and normalised over three."""

from __future__ import annotations

import math

import pytest

from processing.confidence.decision_label import decision_label_confidence, label_of
from processing.interfaces import TokenLogprobs


def _answer(tokens: list[str], alternatives: list[list[tuple[str, float]]] | None) -> TokenLogprobs:
    logprobs = [max(p for _, p in alts) if alts else -0.1 for alts in (alternatives or [[]] * len(tokens))]
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        token_ids=(None,) * len(tokens),
        alternatives=None if alternatives is None else tuple(tuple(a) for a in alternatives),
    )


@pytest.mark.parametrize(
    ("token", "label"),
    [("Yes", "yes"), (" yes", "yes"), ("**No", "no"), ("NO,", "no"), ("May", "maybe"), ("Maybe", "maybe")],
)
def test_surface_forms_map_to_their_label(token: str, label: str) -> None:
    assert label_of(token) == label


@pytest.mark.parametrize("token", ["The", "Not", "yesterday", "m", "n", "", " ", "1"])
def test_other_tokens_are_no_label(token: str) -> None:
    assert label_of(token) is None


def test_mass_is_grouped_by_label_and_normalised_over_the_three() -> None:
    alternatives = [
        [("Yes", math.log(0.4)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("Based", math.log(0.2))],
        [(",", math.log(0.9))],
    ]
    result = decision_label_confidence(_answer(["Yes", ","], alternatives))
    assert result.label == "yes"
    assert result.probability == pytest.approx(0.5 / 0.7)
    assert result.label_mass == pytest.approx(0.7)
    assert result.token_index == 0


def test_the_label_is_read_after_leading_whitespace_and_markup() -> None:
    alternatives = [[("\n", -0.01)], [("**", -0.1)], [("No", math.log(0.6)), ("Maybe", math.log(0.2))]]
    result = decision_label_confidence(_answer(["\n", "**", "No"], alternatives))
    assert (result.label, result.token_index) == ("no", 2)
    assert result.probability == pytest.approx(0.75)


def test_no_confidence_without_a_leading_label_or_without_alternatives() -> None:
    assert decision_label_confidence(_answer(["The", " answer"], [[("The", -0.5)], [(" answer", -0.2)]])) is None
    assert decision_label_confidence(_answer(["Yes"], None)) is None


def test_a_label_token_without_alternatives_of_its_own_gives_no_confidence() -> None:
    answer = _answer(["Yes", ","], [[], [(",", -0.1)]])
    assert decision_label_confidence(answer) is None
