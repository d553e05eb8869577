"""Early pruning by how confidently the model starts answering: two shapes, both with every token counted.

Drop contexts (`prune_and_answer`): for every context the generator writes a short draft from (question, that
context) with log-probabilities; contexts whose draft mean log-probability falls under the threshold are
dropped (the best one is always kept) and the final answer is generated from the rest. The drafts re-read the
question and a context each, so this saves tokens only when the dropped contexts are long.

Best candidate (`best_candidate_by_draft`): n candidate prompts (context groups) are each drafted briefly and
ranked by `rank_candidates`; only the best is generated in full. It replaces generating all n in full and
ranking those (`best_candidate_in_full`), which is where drafts can pay: n - 1 full answers are never written.

Token counts are prompt plus completion tokens of every call in an arm, drafts included, as the generator
reports them (None when it does not). For a reasoning model the draft is the start of its reasoning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from processing.confidence.measures import mean_logprob, rank_candidates
from processing.confidence.parsing import LogprobsUnavailable
from processing.interfaces import Generation, Generator, Message

MessageBuilder = Callable[[str, Sequence[str]], Sequence[Message]]
"""(question, contexts) -> the chat messages; the same builder makes the drafts and the final prompt."""

TokenCountMethod = Literal["generator", "whitespace_estimate"]


@dataclass(frozen=True)
class ContextDecision:
    index: int
    draft_mean_logprob: float | None  # None: the draft produced no tokens to score
    rank: int  # 0 = most confident draft
    kept: bool


@dataclass(frozen=True)
class PruningResult:
    """The pruned answer, one decision per input context, and what pruning saved.

    `prompt_tokens_saved` compares the final prompt with the prompt that carries every context. It is exact
    ("generator") only when a baseline answer was generated and the generator reported prompt tokens for
    both; otherwise it is the difference in whitespace-separated words of the two prompts
    ("whitespace_estimate"), which undercounts sub-word tokens. The drafts' own prompt tokens are reported
    separately (None when the generator does not report them), so the net saving can be judged.
    """

    answer: Generation
    decisions: tuple[ContextDecision, ...]
    prompt_tokens_saved: int
    token_count_method: TokenCountMethod
    draft_prompt_tokens: int | None
    baseline_answer: Generation | None = None
    drafts: tuple[Generation, ...] = ()

    @property
    def kept_indices(self) -> tuple[int, ...]:
        return tuple(d.index for d in self.decisions if d.kept)

    @property
    def pruned_arm_tokens(self) -> int | None:
        """Every token pruning spent: the drafts and the pruned answer, prompt and completion."""
        return total_tokens([*self.drafts, self.answer])

    @property
    def net_tokens_saved(self) -> int | None:
        """Tokens of the unpruned answer minus the pruned arm's; negative when the drafts cost more than they save."""
        if self.baseline_answer is None:
            return None
        baseline, pruned = total_tokens([self.baseline_answer]), self.pruned_arm_tokens
        return None if baseline is None or pruned is None else baseline - pruned


def total_tokens(generations: Sequence[Generation]) -> int | None:
    """Prompt plus completion tokens over the calls; None when any call did not report both."""
    counts = [(g.prompt_tokens, g.completion_tokens) for g in generations]
    if any(None in pair for pair in counts):
        return None
    return sum(prompt + completion for prompt, completion in counts)  # type: ignore[operator]


def prune_and_answer(
    generator: Generator,
    question: str,
    contexts: Sequence[str],
    build_messages: MessageBuilder,
    *,
    threshold: float,
    draft_max_tokens: int = 16,
    answer_max_tokens: int = 512,
    with_baseline: bool = False,
    answer_logprobs: bool = False,
) -> PruningResult:
    """Draft per context, drop the unconfident ones (keeping at least one), answer from the rest.

    `with_baseline` also answers from every context (one more call): the unpruned answer to compare against,
    and an exact prompt-token saving when the generator reports prompt tokens. `answer_logprobs` asks for the
    answers' log-probabilities too, so their confidence can be scored.
    """
    if not contexts:
        raise ValueError("prune_and_answer needs at least one context")
    if not 1 <= draft_max_tokens <= answer_max_tokens:
        raise ValueError(f"draft_max_tokens must be in [1, answer_max_tokens], got {draft_max_tokens}")
    drafts = _generate_each(generator, question, [[context] for context in contexts], build_messages, draft_max_tokens)
    scores = [_draft_score(draft, i) for i, draft in enumerate(drafts)]
    order = sorted(range(len(contexts)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
    kept = {i for i in order if scores[i] is not None and scores[i] >= threshold} or {order[0]}
    decisions = tuple(
        ContextDecision(index=i, draft_mean_logprob=scores[i], rank=order.index(i), kept=i in kept)
        for i in range(len(contexts))
    )
    pruned_messages = build_messages(question, [contexts[i] for i in sorted(kept)])
    full_messages = build_messages(question, contexts)
    answer = generator.generate(pruned_messages, max_tokens=answer_max_tokens, logprobs=answer_logprobs)
    baseline = (
        generator.generate(full_messages, max_tokens=answer_max_tokens, logprobs=answer_logprobs)
        if with_baseline
        else None
    )
    if baseline is not None and baseline.prompt_tokens is not None and answer.prompt_tokens is not None:
        saved, method = baseline.prompt_tokens - answer.prompt_tokens, "generator"
    else:
        saved, method = _word_count(full_messages) - _word_count(pruned_messages), "whitespace_estimate"
    draft_tokens = [draft.prompt_tokens for draft in drafts]
    return PruningResult(
        answer=answer,
        decisions=decisions,
        prompt_tokens_saved=saved,
        token_count_method=method,
        draft_prompt_tokens=None if None in draft_tokens else sum(draft_tokens),
        baseline_answer=baseline,
        drafts=tuple(drafts),
    )


@dataclass(frozen=True)
class CandidateSelection:
    """The answer of the candidate an arm picked, and every token the arm spent to pick it."""

    chosen: int
    answer: Generation
    tokens: int | None
    calls: int


def best_candidate_by_draft(
    generator: Generator,
    question: str,
    candidates: Sequence[Sequence[str]],
    build_messages: MessageBuilder,
    *,
    draft_max_tokens: int,
    answer_max_tokens: int,
) -> CandidateSelection:
    """Draft every candidate context group, rank the drafts, generate only the best one in full."""
    drafts = _generate_each(generator, question, candidates, build_messages, draft_max_tokens)
    for i, draft in enumerate(drafts):
        _draft_score(draft, i)  # raises when the generator gives no log-probabilities
    chosen = rank_candidates([d.logprobs for d in drafts])[0].index
    answer = generator.generate(
        build_messages(question, candidates[chosen]), max_tokens=answer_max_tokens, logprobs=True
    )
    return CandidateSelection(chosen, answer, total_tokens([*drafts, answer]), len(drafts) + 1)


def best_candidate_in_full(
    generator: Generator,
    question: str,
    candidates: Sequence[Sequence[str]],
    build_messages: MessageBuilder,
    *,
    answer_max_tokens: int,
) -> CandidateSelection:
    """The arm drafts replace: every candidate generated in full, the best full answer kept."""
    answers = _generate_each(generator, question, candidates, build_messages, answer_max_tokens)
    chosen = rank_candidates([a.logprobs for a in answers])[0].index
    return CandidateSelection(chosen, answers[chosen], total_tokens(answers), len(answers))


def _generate_each(
    generator: Generator,
    question: str,
    candidates: Sequence[Sequence[str]],
    build_messages: MessageBuilder,
    max_tokens: int,
) -> list[Generation]:
    return [
        generator.generate(build_messages(question, group), max_tokens=max_tokens, logprobs=True)
        for group in candidates
    ]


def _draft_score(draft: Generation, index: int) -> float | None:
    if draft.logprobs is None:
        raise LogprobsUnavailable(
            f"drafts[{index}].logprobs", f"generator {draft.model_id!r} returned none, so contexts cannot be pruned"
        )
    return mean_logprob(draft.logprobs)


def _word_count(messages: Sequence[Message]) -> int:
    return sum(len(message.content.split()) for message in messages)
