"""The agent as a LangGraph state graph: retrieve -> grade -> generate, or abstain when nothing is relevant."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from processing.agent import prompts
from processing.agent.decision import parse_decision
from processing.interfaces import Embedder, Generator, Hit, HybridSearch, VectorStore


class AgentState(TypedDict, total=False):
    question: str
    hits: list[Hit]  # everything retrieved (what retrieval metrics score)
    relevant: list[Hit]  # what the grader kept (what the generator sees)
    answer: str
    decision: str | None
    abstained: bool
    model_id: str


def build_agent(
    embedder: Embedder,
    store: VectorStore,
    generator: Generator,
    *,
    top_k: int,
    relevance_threshold: float,
    max_tokens: int,
    hybrid: bool = False,
) -> Any:
    """A compiled graph; `invoke({"question": q})` returns the final AgentState.

    `hybrid` retrieves with the question text as well as its vector (the store must support HybridSearch).
    """
    if hybrid and not isinstance(store, HybridSearch):
        raise ValueError(f"hybrid retrieval needs a store with hybrid_search; {type(store).__name__} has none")

    def retrieve(state: AgentState) -> AgentState:
        vector = embedder.embed([state["question"]])[0]
        if hybrid:
            return {"hits": store.hybrid_search(state["question"], vector, top_k)}
        return {"hits": store.search(vector, top_k)}

    def grade(state: AgentState) -> AgentState:
        return {"relevant": [hit for hit in state["hits"] if hit.score >= relevance_threshold]}

    def route(state: AgentState) -> str:
        return "generate" if state["relevant"] else "abstain"

    def generate(state: AgentState) -> AgentState:
        messages = prompts.answer_messages(state["question"], [hit.text for hit in state["relevant"]])
        generation = generator.generate(messages, max_tokens=max_tokens)
        return {
            "answer": generation.text,
            "decision": parse_decision(generation.text),
            "abstained": False,
            "model_id": generation.model_id,
        }

    def abstain(state: AgentState) -> AgentState:
        return {"answer": prompts.load("abstain"), "decision": None, "abstained": True, "model_id": generator.model_id}

    graph = StateGraph(AgentState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("grade", grade)
    graph.add_node("generate", generate)
    graph.add_node("abstain", abstain)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "grade")
    graph.add_conditional_edges("grade", route, {"generate": "generate", "abstain": "abstain"})
    graph.add_edge("generate", END)
    graph.add_edge("abstain", END)
    return graph.compile()
