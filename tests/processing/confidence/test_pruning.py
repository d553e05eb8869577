"""Early pruning decisions with a deterministic in-test Generator whose confidence depends on the context given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from processing.confidence.parsing import LogprobsUnavailable
from processing.confidence.pruning import prune_and_answer
from processing.interfaces import Generation, Generator, Message, TokenLogprobs

CONTEXTS = [
    "Aspirin irreversibly inhibits platelet cyclooxygenase.",
    "The hospital car park was resurfaced in 2019.",
    "Low-dose aspirin lowered vascular events in the trial.",
]


def build_messages(question: str, contexts: Sequence[str]) -> list[Message]:
    return [Message("system", "Answer from the context."), Message("user", "\n".join([*contexts, question]))]


@dataclass
class ScriptedGenerator:
    """Draft log-probabilities are looked up from the context in the prompt; prompt tokens = words x 2."""

    draft_probs: dict[str, list[float]]
    reports_prompt_tokens: bool = True
    returns_logprobs: bool = True
    model_id: str = "scripted"
    calls: list[tuple[str, int, bool]] = field(default_factory=list)

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        prompt = messages[-1].content
        self.calls.append((prompt, max_tokens, logprobs))
        words = sum(len(m.content.split()) for m in messages)
        token_logprobs = None
        if logprobs and self.returns_logprobs:
            probs = next(p for context, p in self.draft_probs.items() if context in prompt)
            token_logprobs = TokenLogprobs(
                tokens=tuple(f"w{i}" for i in range(len(probs))),
                logprobs=tuple(math.log(p) for p in probs),
                token_ids=(None,) * len(probs),
            )
        return Generation(
            text=f"answer from {prompt.count(chr(10))} contexts",
            model_id=self.model_id,
            logprobs=token_logprobs,
            prompt_tokens=words * 2 if self.reports_prompt_tokens else None,
        )


def _generator(**kwargs) -> ScriptedGenerator:
    probs = {CONTEXTS[0]: [0.9, 0.8], CONTEXTS[1]: [0.1, 0.2], CONTEXTS[2]: [0.7, 0.6]}
    return ScriptedGenerator(draft_probs=probs, **kwargs)


def test_the_scripted_generator_satisfies_the_interface() -> None:
    assert isinstance(_generator(), Generator)


def test_unconfident_contexts_are_dropped_and_the_answer_uses_the_rest() -> None:
    generator = _generator()
    result = prune_and_answer(generator, "Does aspirin help?", CONTEXTS, build_messages, threshold=math.log(0.5))
    assert result.kept_indices == (0, 2)
    assert [d.rank for d in result.decisions] == [0, 2, 1]
    assert result.decisions[1].draft_mean_logprob == pytest.approx((math.log(0.1) + math.log(0.2)) / 2)
    drafts, final = generator.calls[:3], generator.calls[3]
    assert all(max_tokens == 16 and logprobs for _, max_tokens, logprobs in drafts)
    assert final[1:] == (512, False)
    assert CONTEXTS[1] not in final[0]
    assert final[0].index(CONTEXTS[0]) < final[0].index(CONTEXTS[2])  # original order kept
    assert result.answer.text == "answer from 2 contexts"
    dropped_words = len(CONTEXTS[1].split())
    assert (result.prompt_tokens_saved, result.token_count_method) == (dropped_words, "whitespace_estimate")
    assert result.draft_prompt_tokens == sum(2 * (4 + len(c.split()) + 3) for c in CONTEXTS)
    assert result.baseline_answer is None


def test_at_least_the_best_context_is_kept() -> None:
    result = prune_and_answer(_generator(), "Does aspirin help?", CONTEXTS, build_messages, threshold=-0.01)
    assert result.kept_indices == (0,)


def test_baseline_gives_an_exact_saving_from_reported_prompt_tokens() -> None:
    generator = _generator()
    result = prune_and_answer(
        generator, "Does aspirin help?", CONTEXTS, build_messages, threshold=math.log(0.5), with_baseline=True
    )
    assert result.token_count_method == "generator"
    assert result.baseline_answer is not None
    assert result.baseline_answer.text == "answer from 3 contexts"
    assert result.prompt_tokens_saved == result.baseline_answer.prompt_tokens - result.answer.prompt_tokens
    assert result.prompt_tokens_saved == 2 * len(CONTEXTS[1].split())


def test_without_reported_tokens_the_saving_is_flagged_as_an_estimate() -> None:
    result = prune_and_answer(
        _generator(reports_prompt_tokens=False), "Q?", CONTEXTS, build_messages, threshold=-1.0, with_baseline=True
    )
    assert result.token_count_method == "whitespace_estimate"
    assert result.draft_prompt_tokens is None


def test_drafts_without_logprobs_cannot_prune() -> None:
    with pytest.raises(LogprobsUnavailable, match=r"drafts\[0\]\.logprobs.*scripted"):
        prune_and_answer(_generator(returns_logprobs=False), "Q?", CONTEXTS, build_messages, threshold=-1.0)


def test_empty_draft_ranks_last_and_is_dropped() -> None:
    generator = _generator()
    generator.draft_probs[CONTEXTS[0]] = []
    result = prune_and_answer(generator, "Q?", CONTEXTS, build_messages, threshold=-5.0)
    assert result.decisions[0].draft_mean_logprob is None
    assert result.decisions[0].rank == 2
    assert result.kept_indices == (1, 2)


@pytest.mark.parametrize(
    ("contexts", "draft_max_tokens", "message"),
    [([], 16, "at least one context"), (CONTEXTS, 0, "draft_max_tokens"), (CONTEXTS, 1000, "draft_max_tokens")],
)
def test_bad_arguments_are_rejected(contexts, draft_max_tokens, message) -> None:
    with pytest.raises(ValueError, match=message):
        prune_and_answer(
            _generator(), "Q?", contexts, build_messages, threshold=-1.0, draft_max_tokens=draft_max_tokens
        )
