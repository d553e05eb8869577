"""The agent's confidence edges: accept, retry with more context, abstain with the reason, skip without
log-probabilities; and early pruning wired into the answer step with its token accounting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from processing.agent import prompts
from processing.agent.graph import build_agent
from processing.confidence.assessment import NO_LOGPROBS
from processing.config import RunConfig
from processing.interfaces import Generation, Generator, Hit, Message, TokenLogprobs
from processing.stages.retrieve import answer_row, confidence_status

HITS = [Hit(f"c{i}", f"Context {i} about topic{i} facts.", f"s{i}", 0.9 - i * 0.05) for i in range(8)]
CONFIG = RunConfig(
    top_k=2,
    confidence_measure="sequence_confidence",
    confidence_threshold=0.5,
    low_confidence_token_prob=0.3,
    max_answer_tokens=64,
)


class ListStore:
    """Returns the first k of fixed hits and records each k asked for."""

    version = "fixed"

    def __init__(self) -> None:
        self.ks: list[int] = []

    def write(self, chunks, vectors) -> int:
        raise NotImplementedError

    def publish(self, expected: int) -> int:
        raise NotImplementedError

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        self.ks.append(k)
        return HITS[:k]

    def count(self) -> int:
        return len(HITS)


class ConstantEmbedder:
    model_id, dimension = "constant", 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 2), dtype=np.float32) / math.sqrt(2)


class ScriptedGenerator:
    """Answers with the next scripted (text, per-token probability); drafts are confident for contexts naming
    a kept topic. Prompt tokens are the messages' word count, as a server would report them."""

    model_id = "scripted"

    def __init__(self, answers: list[tuple[str, float]], *, logprobs: bool = True, kept_topics=()) -> None:
        self.answers = answers
        self.returns_logprobs = logprobs
        self.kept_topics = kept_topics
        self.calls: list[tuple[int, int, bool]] = []  # (contexts in prompt, max_tokens, logprobs)

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        contexts = messages[-1].contexts  # the AnswerRequest of prompts.answer_messages
        self.calls.append((len(contexts), max_tokens, logprobs))
        if max_tokens == CONFIG.prune_draft_tokens:
            confident = any(f"topic{t} " in contexts[0] for t in self.kept_topics)
            text, prob = "Context says", 0.9 if confident else 0.1
        else:
            text, prob = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        words = text.split(" ")
        tokens = tuple(w if i == 0 else " " + w for i, w in enumerate(words))
        probs = [prob] * len(tokens)
        return Generation(
            text=text.split("</think>")[-1].strip(),
            model_id=self.model_id,
            logprobs=TokenLogprobs(tokens, tuple(map(math.log, probs)), (None,) * len(tokens))
            if logprobs and self.returns_logprobs
            else None,
            prompt_tokens=sum(len(m.content.split()) for m in messages),
            completion_tokens=len(tokens),
        )


def run_agent(generator: Generator, config: RunConfig = CONFIG) -> tuple[dict, ListStore]:
    store = ListStore()
    state = build_agent(ConstantEmbedder(), store, generator, config).invoke({"question": "Is topic1 safe?"})
    return state, store


def test_a_confident_answer_is_accepted_at_once() -> None:
    generator = ScriptedGenerator([("Yes, it is safe.", 0.9)])
    state, store = run_agent(generator)
    assert state["confidence_route"] == "accepted"
    assert (state["attempt"], store.ks, state["abstained"]) == (0, [2], False)
    assert state["assessment"].confidence == pytest.approx(0.9)
    assert state["assessment"].flags == ()
    assert generator.calls == [(2, 64, True)]  # log-probabilities asked for


def test_low_confidence_retries_once_with_doubled_top_k_then_answers() -> None:
    generator = ScriptedGenerator([("Maybe.", 0.2), ("Yes, it is safe.", 0.8)])
    state, store = run_agent(generator)
    assert store.ks == [2, 4]
    assert [c for c, _, _ in generator.calls] == [2, 4]
    assert (state["confidence_route"], state["attempt"], state["abstained"]) == ("accepted", 1, False)
    assert state["answer"] == "Yes, it is safe."
    assert [a["top_k"] for a in state["attempts"]] == [2, 4]
    assert [round(a["confidence"], 6) for a in state["attempts"]] == [0.2, 0.8]


def test_low_confidence_twice_abstains_with_the_reason_and_keeps_the_candidate() -> None:
    generator = ScriptedGenerator([("Yes, probably.", 0.2)])
    state, store = run_agent(generator)
    assert store.ks == [2, 4]
    assert state["abstained"]
    assert state["decision"] is None
    assert state["answer"] == prompts.load("abstain_low_confidence")
    assert (
        state["abstain_reason"]
        == "answer sequence_confidence 0.200 below confidence_threshold 0.5 after 1 retry (top_k 4)"
    )
    assert state["generation"].text == "Yes, probably."
    row = answer_row("q1", state)
    assert (row["candidate_decision"], row["retries"], row["final_top_k"], row["confidence_route"]) == (
        "yes",
        1,
        4,
        "abstain",
    )
    assert row["confidence"]["flagged_span_count"] == 1  # every token under 0.3: one merged span
    assert row["confidence"]["flagged_spans"] == "Yes, probably."


def test_without_retries_low_confidence_abstains_at_once() -> None:
    state, store = run_agent(ScriptedGenerator([("No.", 0.1)]), CONFIG.model_copy(update={"confidence_max_retries": 0}))
    assert store.ks == [2]
    assert state["abstain_reason"].endswith("after 0 retries (top_k 2)")


def test_without_log_probabilities_the_confidence_edges_are_skipped() -> None:
    generator = ScriptedGenerator([("Maybe.", 0.1)], logprobs=False)
    state, store = run_agent(generator)
    assert state["confidence_route"] == f"skipped: {NO_LOGPROBS}"
    assert (store.ks, len(generator.calls), state["abstained"]) == ([2], 1, False)
    row = answer_row("q1", state)
    assert row["confidence"]["confidence_available"] is False
    assert row["confidence"]["answer_sequence_confidence"] is None  # unknown, not zero
    assert row["confidence"]["flagged_span_count"] is None
    assert confidence_status([row]) == f"unavailable ({NO_LOGPROBS})"


def test_reasoning_is_scored_apart_from_the_answer() -> None:
    generator = ScriptedGenerator([("Thinking hard </think> Yes.", 0.9)])
    state, _ = run_agent(generator)
    assessment = state["assessment"]
    assert assessment.reasoning_confidence == pytest.approx(0.9)
    assert assessment.answer_token_count == 1
    assert assessment.prompt_clarity == pytest.approx(0.9)


def test_relevance_abstention_records_no_confidence() -> None:
    config = CONFIG.model_copy(update={"relevance_threshold": 0.99})
    state, _ = run_agent(ScriptedGenerator([("Yes.", 0.9)]), config)
    row = answer_row("q1", state)
    assert row["abstain_reason"] == "no retrieved chunk reached relevance_threshold 0.99 (top_k 2)"
    assert (row["confidence"], row["candidate_answer"], row["confidence_route"]) == (
        None,
        None,
        "not reached: no answer was generated",
    )


def test_pruning_drops_unconfident_contexts_and_counts_the_tokens_saved() -> None:
    config = CONFIG.model_copy(update={"prune_contexts": True, "top_k": 4, "prune_threshold": math.log(0.5)})
    generator = ScriptedGenerator([("Yes, it is safe.", 0.9)], kept_topics=(0, 2))
    state, _ = run_agent(generator, config)
    drafts = [call for call in generator.calls if call[1] == config.prune_draft_tokens]
    assert drafts == [(1, 16, True)] * 4
    answers = [call for call in generator.calls if call[1] == 64]
    assert answers == [(2, 64, True), (4, 64, True)]  # pruned answer, then the unpruned baseline
    assert state["contexts"] == [HITS[0].text, HITS[2].text]
    pruning = answer_row("q1", state)["pruning"]
    dropped_words = len(HITS[1].text.split()) + len(HITS[3].text.split()) + 2 * len(prompts.CONTEXT_SEPARATOR.split())
    assert pruning == {
        "skipped": None,
        "contexts_in": 4,
        "contexts_kept": 2,
        "prompt_tokens_saved": dropped_words,
        "token_count_method": "generator",
        "draft_prompt_tokens": pruning["draft_prompt_tokens"],
        "net_tokens_saved": pruning["net_tokens_saved"],
        "baseline_answer": "Yes, it is safe.",
        "baseline_decision": "yes",
    }
    assert pruning["draft_prompt_tokens"] > 0
    # every token counted: both answers write the same 4 tokens, so the net is the prompt saving minus all that
    # the four drafts cost (their prompts and their 2-token completions)
    assert pruning["net_tokens_saved"] == dropped_words - pruning["draft_prompt_tokens"] - 4 * 2


def test_pruning_without_log_probabilities_falls_back_and_says_why() -> None:
    config = CONFIG.model_copy(update={"prune_contexts": True})
    state, _ = run_agent(ScriptedGenerator([("Yes.", 0.9)], logprobs=False), config)
    assert state["pruning"].skipped == NO_LOGPROBS
    assert state["contexts"] == [HITS[0].text, HITS[1].text]


def test_on_the_decision_label_measure_an_unlabelled_answer_is_retried_then_abstained_on() -> None:
    config = CONFIG.model_copy(update={"confidence_measure": "decision_label"})
    generator = ScriptedGenerator([("Yes, it is safe.", 0.9)])  # confident tokens, but no top-k alternatives
    state, store = run_agent(generator, config)
    assert state["assessment"].answer["sequence_confidence"] == pytest.approx(0.9)
    assert state["assessment"].confidence is None  # the label's probability cannot be read without alternatives
    assert (state["confidence_route"], store.ks) == ("abstain", [2, 4])
    assert state["abstain_reason"] == (
        "the answer did not start with a yes/no/maybe label with top-k alternatives after 1 retry (top_k 4)"
    )
