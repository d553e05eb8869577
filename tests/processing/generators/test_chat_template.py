"""The in-repo DeepSeek-R1 chat template renders exactly what the model's own template renders."""

from __future__ import annotations

import pytest

from processing.generators.chat_template import deepseek_r1_prompt, deepseek_r1_server_prompt
from processing.interfaces import Message


def test_multi_turn_rendering_matches_the_model_template() -> None:
    messages = [
        Message("system", "Be brief."),
        Message("system", "Cite the context."),
        Message("user", "Q1"),
        Message("assistant", "Thinking it over.\n</think>\n\nA1"),
        Message("user", "Q2"),
    ]
    assert deepseek_r1_prompt(messages) == (
        "<\uff5cbegin\u2581of\u2581sentence\uff5c>Be brief.\n\nCite the context."
        "<\uff5cUser\uff5c>Q1"
        "<\uff5cAssistant\uff5c>\n\nA1<\uff5cend\u2581of\u2581sentence\uff5c>"
        "<\uff5cUser\uff5c>Q2"
        "<\uff5cAssistant\uff5c><think>\n"
    )
    assert deepseek_r1_server_prompt(messages) == deepseek_r1_prompt(messages).removeprefix(
        "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
    )


@pytest.mark.parametrize(
    ("messages", "message"),
    [([], "must not be empty"), ([Message("tool", "x")], r"messages\[0\]\.role")],
)
def test_bad_messages_are_named(messages, message) -> None:
    with pytest.raises(ValueError, match=message):
        deepseek_r1_prompt(messages)
