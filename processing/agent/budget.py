"""A reply cut off inside its `<think>` reasoning is its own outcome, not an answer.

DeepSeek-R1 distills reason at length before they answer; a reply that hits `max_answer_tokens` before
`</think>` has no answer at all. It is asked once more with `reasoning_retry_max_tokens` when the run config
sets one (a bounded second chance: the budget is fixed, never grown again), else, or when that reply is cut too,
the agent abstains with this reason. Every cut reply is counted, so the run shows how often the budget was short.
"""

from __future__ import annotations

from collections.abc import Sequence

from processing.agent import prompts
from processing.config import RunConfig
from processing.interfaces import Generation, Generator


def retry_cut_reasoning(
    generator: Generator, question: str, contexts: Sequence[str], generation: Generation, config: RunConfig
) -> tuple[Generation, int]:
    """(the answer to keep, how many replies were cut inside their reasoning: 0, 1 or 2)."""
    if not generation.truncated_in_reasoning:
        return generation, 0
    if not config.reasoning_retry_max_tokens:
        return generation, 1
    retried = generator.generate(
        prompts.answer_messages(question, contexts), max_tokens=config.reasoning_retry_max_tokens, logprobs=True
    )
    return retried, 1 + retried.truncated_in_reasoning


def truncation_reason(config: RunConfig) -> str:
    """Why the agent abstained on a question whose last reply was cut inside its reasoning."""
    budgets = f"max_answer_tokens {config.max_answer_tokens}"
    if config.reasoning_retry_max_tokens:
        budgets += f", then reasoning_retry_max_tokens {config.reasoning_retry_max_tokens}"
    return f"truncated_in_reasoning: the reply hit its token budget inside <think> ({budgets})"
