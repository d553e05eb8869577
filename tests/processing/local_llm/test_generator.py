"""The embedded model through the session's real llama-server: log-probabilities in the chat format, token ids,
top-k alternatives and token counts, and a decision-label confidence read from them."""

from __future__ import annotations

import math

from processing.agent import prompts
from processing.confidence.assessment import assess
from processing.confidence.decision_label import LABELS

QUESTION = "Does aspirin lower the risk of a second heart attack?"
CONTEXT = "In the trial, daily aspirin lowered the risk of a second heart attack by a quarter."


def test_generates_with_ids_alternatives_and_token_counts(local_llm) -> None:
    generation = local_llm.generate(prompts.answer_messages(QUESTION, [CONTEXT]), max_tokens=24, logprobs=True)
    logprobs = generation.logprobs
    assert generation.text.strip()
    assert generation.model_id == "smollm2-135m-instruct"
    assert 0 < len(logprobs.tokens) <= 24
    assert all(isinstance(token_id, int) for token_id in logprobs.token_ids)
    assert all(lp <= 0.0 for lp in logprobs.logprobs)
    assert len(logprobs.alternatives[0]) == 10  # the run config's top_logprobs
    assert generation.prompt_tokens > len(CONTEXT.split())
    assert generation.completion_tokens == len(logprobs.tokens)


def test_greedy_decoding_is_repeatable(local_llm) -> None:
    messages = prompts.answer_messages(QUESTION, [CONTEXT])
    first, second = (local_llm.generate(messages, max_tokens=12, logprobs=True) for _ in range(2))
    assert first.text == second.text
    assert first.logprobs.logprobs == second.logprobs.logprobs


def test_the_answer_starts_with_a_label_whose_probability_is_read(local_llm) -> None:
    generation = local_llm.generate(prompts.answer_messages(QUESTION, [CONTEXT]), max_tokens=24, logprobs=True)
    assessment = assess(generation, token_prob_threshold=0.3, clarity_tokens=5, measure="decision_label")
    assert assessment.decision_label in LABELS
    assert 0.0 < assessment.decision_label_confidence <= 1.0
    assert assessment.confidence == assessment.decision_label_confidence
    assert math.isfinite(assessment.answer["sequence_confidence"])


def test_params_name_the_weights_that_produced_the_numbers(local_llm) -> None:
    params = local_llm.params()
    assert params["generator_weights_sha256"] == local_llm.weights.model.sha256
    assert params["generator_weights_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "135M" in params["generator_model_note"]
