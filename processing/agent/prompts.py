"""The agent's prompts, kept as text files beside this module (no prompt-hub pulls at run time)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from processing.interfaces import Message

PROMPT_DIR = Path(__file__).parent / "prompts"
CONTEXT_SEPARATOR = "\n\n---\n\n"


@cache
def load(name: str) -> str:
    return (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8").strip()


def answer_messages(question: str, contexts: Sequence[str]) -> list[Message]:
    user = load("answer").format(context=CONTEXT_SEPARATOR.join(contexts), question=question)
    return [Message("system", load("system")), Message("user", user)]


def parse_answer_prompt(messages: Sequence[Message]) -> tuple[str, list[str]]:
    """(question, contexts) back from the last user message built by `answer_messages`."""
    user = next(m.content for m in reversed(messages) if m.role == "user")
    context = re.search(r"<context>\n(.*)\n</context>", user, re.DOTALL)
    question = re.search(r"<question>(.*)</question>", user, re.DOTALL)
    if not (context and question):
        raise ValueError("the user message does not follow the answer prompt (missing <context> or <question>)")
    return question.group(1).strip(), [c for c in context.group(1).split(CONTEXT_SEPARATOR) if c.strip()]
