"""The agent's prompts, kept as text files beside this module (no prompt-hub pulls at run time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from processing.interfaces import Message

PROMPT_DIR = Path(__file__).parent / "prompts"
CONTEXT_SEPARATOR = "\n\n---\n\n"


@cache
def load(name: str) -> str:
    return (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class AnswerRequest(Message):
    """The answer prompt's user message with the question and contexts it was rendered from, as data: a
    generator that works on them (the extractive baseline) reads these fields and never parses the text back,
    which a context holding the separator or the prompt's own tags would split or cut."""

    question: str = ""
    contexts: tuple[str, ...] = ()


def answer_messages(question: str, contexts: Sequence[str]) -> list[Message]:
    user = load("answer").format(context=CONTEXT_SEPARATOR.join(contexts), question=question)
    return [Message("system", load("system")), AnswerRequest("user", user, question, tuple(contexts))]
