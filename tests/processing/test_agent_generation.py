"""What the agent does with each service's generation: a chosen-token-only confidence (Bedrock Custom Model
Import), a reply cut inside `<think>` (retried once with a larger budget, else abstained on and counted), and
every generation as an LLM span of the question's MLflow trace."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import boto3
import mlflow
import pytest
from botocore.stub import Stubber
from mlflow.entities import SpanType

from processing.agent import prompts
from processing.agent.graph import build_agent
from processing.config import RunConfig, load_config
from processing.datasets import QaRecord
from processing.generators.bedrock_cmi import BedrockCustomModelGenerator
from processing.generators.sagemaker_tgi import SageMakerTGIGenerator
from processing.interfaces import Generation, Message, TokenLogprobs
from processing.retry import RetryPolicy
from processing.stages.retrieve import answer_all, answer_row
from tests.processing.recorded import payload, streaming_body
from tests.processing.test_agent_confidence import HITS, ConstantEmbedder, ListStore

CMI_ARN = "arn:aws:bedrock:us-east-1:111111111111:imported-model/k2j4example"
NO_WAIT = RetryPolicy(max_attempts=1, initial_delay_s=0.0, max_delay_s=0.0)
QUESTION = "Is topic1 safe?"


def _agent(generator, config: RunConfig):  # type: ignore[no-untyped-def]
    store = ListStore()
    return build_agent(ConstantEmbedder(), store, generator, config), store


def test_a_custom_model_import_answer_is_scored_from_chosen_token_logprobs(tokenizer_path: Path) -> None:
    """The recorded completion carries one `{"<id>": logprob}` per token, as the Bedrock documentation of
    `return_logprobs` shows: no alternatives. `auto` picks the token-mean measure, so the answer is accepted on
    its own score instead of being retried and abstained on for a label probability it can never have."""
    config = load_config(
        None, {"generator": "bedrock-cmi", "generator_endpoint": CMI_ARN, "top_k": "2", "confidence_threshold": "0.5"}
    )
    assert config.confidence_measure == "sequence_confidence"
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    generator = BedrockCustomModelGenerator(CMI_ARN, tokenizer_path=tokenizer_path, client=client, retry=NO_WAIT)
    agent, store = _agent(generator, config)
    with Stubber(client) as stubber:
        reply = {"body": streaming_body(payload("bedrock_cmi_completion")), "contentType": "application/json"}
        stubber.add_response("invoke_model", reply)
        state = agent.invoke({"question": QUESTION})
        stubber.assert_no_pending_responses()
    expected = math.exp(sum(lp for entry in payload("bedrock_cmi_completion")["logprobs"] for lp in entry.values()) / 7)
    assert state["assessment"].confidence == pytest.approx(expected)
    assert state["assessment"].decision_label_confidence is None  # no alternatives: the label measure is empty
    assert (state["confidence_route"], store.ks, state["abstained"]) == ("accepted", [2], False)
    assert state["answer"] == "Yes, aspirin lowers the risk."


class CutReasoning:
    """A reasoning model whose reply is cut inside `<think>` at every budget in `cut_at`, answering otherwise."""

    model_id = "r1-distill"

    def __init__(self, cut_at: set[int]) -> None:
        self.cut_at = cut_at
        self.budgets: list[int] = []

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        self.budgets.append(max_tokens)
        if max_tokens in self.cut_at:
            return Generation(
                "", self.model_id, reasoning="Let me weigh", stop_reason="length", truncated_in_reasoning=True
            )
        tokens = ("Yes", ",", " safe", ".")
        scored = TokenLogprobs(tokens, (math.log(0.9),) * 4, (None,) * 4)
        return Generation("Yes, safe.", self.model_id, reasoning="Weighed.", logprobs=scored, stop_reason="eos_token")


BUDGET = RunConfig(top_k=2, confidence_measure="sequence_confidence", max_answer_tokens=64)


def test_a_reply_cut_inside_reasoning_is_asked_again_once_with_the_larger_budget() -> None:
    generator = CutReasoning(cut_at={64})
    config = BUDGET.model_copy(update={"reasoning_retry_max_tokens": 256})
    agent, _ = _agent(generator, config)
    state = agent.invoke({"question": QUESTION})
    assert generator.budgets == [64, 256]
    assert (state["answer"], state["abstained"], state["truncated_in_reasoning"]) == ("Yes, safe.", False, 1)
    assert answer_row("q1", state)["truncated_in_reasoning"] == 1


def test_a_reply_cut_again_is_abstained_on_with_that_reason() -> None:
    generator = CutReasoning(cut_at={64, 256})
    config = BUDGET.model_copy(update={"reasoning_retry_max_tokens": 256})
    agent, _ = _agent(generator, config)
    state = agent.invoke({"question": QUESTION})
    assert generator.budgets == [64, 256]  # bounded: one retry, never a third call
    assert state["abstained"]
    assert state["answer"] == prompts.load("abstain_truncated")
    assert state["abstain_reason"] == (
        "truncated_in_reasoning: the reply hit its token budget inside <think> "
        "(max_answer_tokens 64, then reasoning_retry_max_tokens 256)"
    )
    assert state["truncated_in_reasoning"] == 2
    assert "assessment" not in state  # a cut reply is never scored as if it were an answer


def test_without_a_retry_budget_a_cut_reply_is_abstained_on_at_once() -> None:
    generator = CutReasoning(cut_at={64})
    agent, _ = _agent(generator, BUDGET)
    state = agent.invoke({"question": QUESTION})
    assert (generator.budgets, state["abstained"], state["truncated_in_reasoning"]) == ([64], True, 1)
    assert state["abstain_reason"].endswith("(max_answer_tokens 64)")
    assert answer_row("q1", state)["confidence_route"] == "not reached: the reply was cut inside its reasoning"


def test_tgi_reply_cut_inside_reasoning_then_answered_with_the_retry_budget() -> None:
    """Through the TGI generator and its recorded responses: the first reply stops at `length` before
    `</think>` with the prompt echoed, the retry with the larger `max_new_tokens` answers."""
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    generator = SageMakerTGIGenerator("ragops-dev-llm", client=client, retry=NO_WAIT, top_n_tokens=0)
    messages = prompts.answer_messages(QUESTION, [h.text for h in HITS[:2]])  # what the agent will send
    prompt = generator.request_body(messages, max_tokens=1, logprobs=True)["inputs"]
    recorded_prompt = payload("tgi_generate_cut_in_reasoning")[0]["generated_text"].removesuffix(
        "Aspirin inhibits platelets"
    )
    replies = []
    for name, budget in (("tgi_generate_cut_in_reasoning", 64), ("tgi_generate_echoed", 256)):
        reply = payload(name)
        reply[0]["generated_text"] = prompt + reply[0]["generated_text"].removeprefix(recorded_prompt)
        replies.append((reply, budget))
    config = BUDGET.model_copy(update={"reasoning_retry_max_tokens": 256})
    agent, _ = _agent(generator, config)
    with Stubber(client) as stubber:
        for reply, budget in replies:
            body = generator.request_body(messages, max_tokens=budget, logprobs=True)
            expected = {
                "EndpointName": "ragops-dev-llm",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": json.dumps(body),
            }
            response = {"Body": streaming_body(reply), "ContentType": "application/json"}
            stubber.add_response("invoke_endpoint", response, expected)
        state = agent.invoke({"question": QUESTION})
        stubber.assert_no_pending_responses()
    assert (state["answer"], state["truncated_in_reasoning"]) == ("Yes, it reduces risk.", 1)


def test_each_generation_is_an_llm_span_of_the_question_trace(mlflow_store: str) -> None:
    """Run as the retrieval stage runs it (LangChain autolog, questions batched) and read the trace back."""
    mlflow.set_experiment("agent-generation-spans")
    generator = CutReasoning(cut_at={64})
    config = BUDGET.model_copy(update={"reasoning_retry_max_tokens": 256})
    agent, _ = _agent(generator, config)
    mlflow.langchain.autolog(log_traces=True, silent=True)
    try:
        with mlflow.start_run() as run:
            rows, _, _ = answer_all(agent, [QaRecord("q1", QUESTION, (), "Yes.", "yes")], concurrency=2).ordered()
    finally:
        mlflow.langchain.autolog(disable=True)
        mlflow.flush_trace_async_logging()
    assert rows[0]["truncated_in_reasoning"] == 1
    (trace,) = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    spans = {span.span_id: span for span in trace.data.spans}
    llm = [span for span in spans.values() if span.span_type == SpanType.LLM]
    assert [span.inputs["max_tokens"] for span in llm] == [64, 256]  # the cut reply and its retry
    assert all(spans[span.parent_id].name == "generate" for span in llm)  # inside the agent's generate node
    cut, answer = llm
    assert QUESTION in cut.inputs["messages"][-1]["content"]
    assert (cut.outputs["answer"], cut.attributes["truncated_in_reasoning"]) == ("", True)
    assert cut.attributes["logprobs"] == "not returned"
    assert answer.outputs == {"answer": "Yes, safe.", "reasoning": "Weighed."}
    assert answer.attributes["logprob_tokens"] == 4
    assert answer.attributes["logprob_mean"] == pytest.approx(math.log(0.9))
    assert answer.attributes["stop_reason"] == "eos_token"


def test_a_generation_outside_any_trace_writes_no_trace(mlflow_store: str) -> None:
    mlflow.set_experiment("agent-generation-untraced")
    agent, _ = _agent(CutReasoning(cut_at=set()), BUDGET)
    agent.invoke({"question": QUESTION})
    assert mlflow.search_traces(return_type="list") == []
