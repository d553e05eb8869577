"""The agent as a LangGraph state graph.

    retrieve -> grade -> (nothing relevant) abstain
                      -> generate -> (cut inside <think>) abstain
                                  -> assess -> accepted | retry -> retrieve ... | low-confidence abstain

`generate` asks for token log-probabilities (and prunes contexts first when `prune_contexts` is on); `assess`
scores the answer. Below `confidence_threshold` the agent retries with more context: top_k doubles on each
retry, up to `confidence_max_retries` (1 by default: exactly one retry), then it abstains with the reason.
More context was chosen over a rewritten query because a low score most often means thin evidence, and
widening retrieval needs no extra generation call. A generator without log-probabilities skips these edges:
the answer is accepted and `confidence_route` records "skipped: <reason>". A reply cut off inside its `<think>`
reasoning is asked again once with a larger budget when the config allows, else abstained on (agent/budget.py).
Every generation is an LLM span of the question's trace (generators/traced.py).
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from processing.agent import prompts
from processing.agent.answering import PruningOutcome, generate_answer
from processing.agent.budget import retry_cut_reasoning, truncation_reason
from processing.agent.decision import parse_decision
from processing.confidence.assessment import AnswerAssessment, assess
from processing.config import RunConfig
from processing.generators.traced import TracedGenerator
from processing.interfaces import Embedder, Generation, Generator, Hit, HybridSearch, VectorStore

ACCEPTED, RETRY, ABSTAIN = "accepted", "retry", "abstain"
SKIPPED_PREFIX = "skipped: "


class AgentState(TypedDict, total=False):
    question: str
    attempt: int  # 0 for the first answer, n after n confidence retries
    top_k: int  # chunks retrieved in the current attempt
    hits: list[Hit]  # everything retrieved (what retrieval metrics score)
    relevant: list[Hit]  # what the grader kept
    contexts: list[str]  # what the answer read: the relevant chunks minus any pruned
    generation: Generation  # the latest generated answer, kept when the agent abstains after it
    answer: str
    decision: str | None
    abstained: bool
    abstain_reason: str | None
    model_id: str
    assessment: AnswerAssessment
    confidence_route: str  # accepted | retry | abstain | "skipped: <why>"
    attempts: list[dict[str, Any]]  # per attempt: top_k and answer confidence
    pruning: PruningOutcome | None
    truncated_in_reasoning: int  # replies cut inside <think>, over every attempt


def build_agent(embedder: Embedder, store: VectorStore, generator: Generator, config: RunConfig) -> Any:
    """A compiled graph; `invoke({"question": q})` returns the final AgentState.

    With `opensearch_bm25_weight > 0` retrieval sends the question text as well as its vector (hybrid search).
    """
    hybrid = config.opensearch_bm25_weight > 0
    generator = TracedGenerator(generator)
    if hybrid and not isinstance(store, HybridSearch):
        raise ValueError(f"hybrid retrieval needs a store with hybrid_search; {type(store).__name__} has none")

    def retrieve(state: AgentState) -> AgentState:
        attempt = state.get("attempt", 0)
        top_k = config.top_k * 2**attempt
        vector = embedder.embed([state["question"]])[0]
        hits = store.hybrid_search(state["question"], vector, top_k) if hybrid else store.search(vector, top_k)
        return {"attempt": attempt, "top_k": top_k, "hits": hits}

    def grade(state: AgentState) -> AgentState:
        return {"relevant": [hit for hit in state["hits"] if hit.score >= config.relevance_threshold]}

    def has_context(state: AgentState) -> str:
        return "generate" if state["relevant"] else "abstain"

    def generate(state: AgentState) -> AgentState:
        generation, contexts, pruning = generate_answer(
            generator, state["question"], [hit.text for hit in state["relevant"]], config
        )
        generation, cut = retry_cut_reasoning(generator, state["question"], contexts, generation, config)
        return {
            "truncated_in_reasoning": state.get("truncated_in_reasoning", 0) + cut,
            "generation": generation,
            "contexts": contexts,
            "pruning": pruning,
            "answer": generation.text,
            "decision": parse_decision(generation.text),
            "abstained": False,
            "abstain_reason": None,
            "model_id": generation.model_id,
        }

    def answered(state: AgentState) -> str:
        return "abstain_truncated" if state["generation"].truncated_in_reasoning else "assess"

    def abstain_truncated(state: AgentState) -> AgentState:
        cut = _abstention("abstain_truncated", truncation_reason(config))
        return cut | {"confidence_route": "not reached: the reply was cut inside its reasoning"}

    def assess_answer(state: AgentState) -> AgentState:
        assessment = assess(
            state["generation"],
            token_prob_threshold=config.low_confidence_token_prob,
            clarity_tokens=config.prompt_clarity_tokens,
            measure=config.confidence_measure,
        )
        attempts = [*state.get("attempts", []), {"top_k": state["top_k"], "confidence": assessment.confidence}]
        return {"assessment": assessment, "attempts": attempts, "confidence_route": _route(assessment, state)}

    def _route(assessment: AnswerAssessment, state: AgentState) -> str:
        if not assessment.available:
            return SKIPPED_PREFIX + str(assessment.unavailable_reason)
        if assessment.confidence is not None and assessment.confidence >= config.confidence_threshold:
            return ACCEPTED
        return RETRY if state["attempt"] < config.confidence_max_retries else ABSTAIN

    def after_assessment(state: AgentState) -> str:
        route = state["confidence_route"]
        return route if route in (RETRY, ABSTAIN) else ACCEPTED

    def retry(state: AgentState) -> AgentState:
        return {"attempt": state["attempt"] + 1}

    def abstain(state: AgentState) -> AgentState:
        reason = f"no retrieved chunk reached relevance_threshold {config.relevance_threshold} (top_k {state['top_k']})"
        return _abstention("abstain", reason)

    def abstain_low_confidence(state: AgentState) -> AgentState:
        confidence, retries = state["assessment"].confidence, state["attempt"]
        if confidence is None:
            score = (
                "the answer did not start with a yes/no/maybe label with top-k alternatives"
                if config.confidence_measure == "decision_label"
                else "the answer had no scored tokens"
            )
        else:
            measured = f"answer {config.confidence_measure} {confidence:.3f}"
            score = f"{measured} below confidence_threshold {config.confidence_threshold}"
        reason = f"{score} after {retries} retr{'y' if retries == 1 else 'ies'} (top_k {state['top_k']})"
        return _abstention("abstain_low_confidence", reason)

    def _abstention(prompt: str, reason: str) -> AgentState:
        return {
            "answer": prompts.load(prompt),
            "decision": None,
            "abstained": True,
            "abstain_reason": reason,
            "model_id": generator.model_id,
        }

    graph = StateGraph(AgentState)
    for name, node in [
        ("retrieve", retrieve),
        ("grade", grade),
        ("generate", generate),
        ("assess", assess_answer),
        ("retry", retry),
        ("abstain", abstain),
        ("abstain_low_confidence", abstain_low_confidence),
        ("abstain_truncated", abstain_truncated),
    ]:
        graph.add_node(name, node)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "grade")
    graph.add_conditional_edges("grade", has_context, {"generate": "generate", "abstain": "abstain"})
    graph.add_conditional_edges("generate", answered, {"assess": "assess", "abstain_truncated": "abstain_truncated"})
    graph.add_conditional_edges(
        "assess", after_assessment, {ACCEPTED: END, RETRY: "retry", ABSTAIN: "abstain_low_confidence"}
    )
    graph.add_edge("retry", "retrieve")
    graph.add_edge("abstain", END)
    graph.add_edge("abstain_low_confidence", END)
    graph.add_edge("abstain_truncated", END)
    return graph.compile()
