"""The agent's generation step: one answer with token log-probabilities, from pruned contexts when asked.

With `prune_contexts` on, contexts are pruned by draft confidence (processing.confidence.pruning) and the
unpruned answer is generated too, as the baseline the evaluation compares against on the same question.
Pruning that cannot run (one context, or a generator without log-probabilities) falls back to the plain
answer and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processing.agent import prompts
from processing.agent.decision import parse_decision
from processing.confidence.assessment import NO_LOGPROBS
from processing.confidence.parsing import LogprobsUnavailable
from processing.confidence.pruning import PruningResult, prune_and_answer
from processing.config import RunConfig
from processing.interfaces import Generation, Generator


@dataclass(frozen=True)
class PruningOutcome:
    """What pruning did for one answer; `skipped` names why it did not run (then the counts are None)."""

    skipped: str | None
    contexts_in: int
    contexts_kept: int | None = None
    prompt_tokens_saved: int | None = None
    token_count_method: str | None = None
    draft_prompt_tokens: int | None = None
    net_tokens_saved: int | None = None  # unpruned answer's tokens minus drafts' and pruned answer's
    baseline_answer: str | None = None
    baseline_decision: str | None = None

    @classmethod
    def from_result(cls, result: PruningResult, contexts_in: int) -> PruningOutcome:
        baseline = result.baseline_answer
        return cls(
            skipped=None,
            contexts_in=contexts_in,
            contexts_kept=len(result.kept_indices),
            prompt_tokens_saved=result.prompt_tokens_saved,
            token_count_method=result.token_count_method,
            draft_prompt_tokens=result.draft_prompt_tokens,
            net_tokens_saved=result.net_tokens_saved,
            baseline_answer=None if baseline is None else baseline.text,
            baseline_decision=None if baseline is None else parse_decision(baseline.text),
        )

    def record(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "contexts_in": self.contexts_in,
            "contexts_kept": self.contexts_kept,
            "prompt_tokens_saved": self.prompt_tokens_saved,
            "token_count_method": self.token_count_method,
            "draft_prompt_tokens": self.draft_prompt_tokens,
            "net_tokens_saved": self.net_tokens_saved,
            "baseline_answer": self.baseline_answer,
            "baseline_decision": self.baseline_decision,
        }


def generate_answer(
    generator: Generator, question: str, contexts: Sequence[str], config: RunConfig
) -> tuple[Generation, list[str], PruningOutcome | None]:
    """(answer, the contexts it read, what pruning did or None when pruning is off)."""
    if not config.prune_contexts:
        return _plain(generator, question, contexts, config), list(contexts), None
    if len(contexts) < 2:
        skipped = PruningOutcome(skipped="fewer than two contexts", contexts_in=len(contexts))
        return _plain(generator, question, contexts, config), list(contexts), skipped
    try:
        result = prune_with_baseline(generator, question, contexts, config)
    except LogprobsUnavailable:
        skipped = PruningOutcome(skipped=NO_LOGPROBS, contexts_in=len(contexts))
        return _plain(generator, question, contexts, config), list(contexts), skipped
    kept = [contexts[i] for i in result.kept_indices]
    return result.answer, kept, PruningOutcome.from_result(result, len(contexts))


def prune_with_baseline(
    generator: Generator, question: str, contexts: Sequence[str], config: RunConfig
) -> PruningResult:
    """Pruned answer plus the every-context baseline, with the run config's pruning settings."""
    return prune_and_answer(
        generator,
        question,
        contexts,
        prompts.answer_messages,
        threshold=config.prune_threshold,
        draft_max_tokens=min(config.prune_draft_tokens, config.max_answer_tokens),
        answer_max_tokens=config.max_answer_tokens,
        with_baseline=True,
        answer_logprobs=True,
    )


def _plain(generator: Generator, question: str, contexts: Sequence[str], config: RunConfig) -> Generation:
    messages = prompts.answer_messages(question, contexts)
    return generator.generate(messages, max_tokens=config.max_answer_tokens, logprobs=True)
