"""The retrieval stage answers with a bounded number of questions in flight, in input order, and exactly what the
sequential run answers: against a real HTTP server that takes a while to answer, as a remote endpoint does."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from processing.agent.graph import build_agent
from processing.backends.faiss_store import FaissStore, HnswParams
from processing.chunking import chunk_id
from processing.config import RunConfig
from processing.datasets import QaRecord
from processing.generators.openai_compatible import OpenAICompatibleGenerator
from processing.interfaces import Chunk
from processing.stages.retrieve import answer_all
from tests.processing.chat_server import serving
from tests.processing.helpers import sample_records

DELAY_S = 0.2


class InFlight:
    """Answers each chat completion after DELAY_S with text derived from the question; counts concurrent requests."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> tuple[int, Any]:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(DELAY_S)
        with self.lock:
            self.now -= 1
        prompt = body["messages"][-1]["content"]
        question = prompt[prompt.index("<question>") :][:50]
        message = {"role": "assistant", "content": f"Yes. {question}"}
        return 200, {"model": "m", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


@pytest.fixture(scope="module")
def records() -> list[QaRecord]:
    return [
        QaRecord(
            record_id=f"q{n}",
            question=r["QUESTION"],
            contexts=tuple(r["CONTEXTS"]),
            final_decision="yes",
            long_answer=r["LONG_ANSWER"],
        )
        for n, r in enumerate(sample_records(8).values())
    ]


def agent_for(embedder: Any, tmp_path: Any, url: str, records: list[QaRecord]) -> Any:
    contexts = [c for r in records for c in r.contexts]
    chunks = list({chunk_id(c): Chunk(chunk_id(c), c, f"ctx-{i}") for i, c in enumerate(contexts)}.values())
    store = FaissStore(tmp_path, version="r1", params=HnswParams(16, 64, 64, "cosinesimil"), embedding_model="m")
    store.write(chunks, embedder.embed([c.text for c in chunks]))
    store.publish(len(chunks))
    generator = OpenAICompatibleGenerator(url, "m")
    return build_agent(embedder, store, generator, RunConfig(top_k=3, relevance_threshold=0.0))


@pytest.mark.parametrize("concurrency", [2, 4])
def test_answers_are_in_input_order_identical_to_sequential_with_bounded_requests_in_flight(
    embedder: Any, tmp_path: Any, records: list[QaRecord], concurrency: int
) -> None:
    server = InFlight()
    with serving(server) as recorded:
        agent = agent_for(embedder, tmp_path, recorded.base_url, records)
        sequential, _, _ = answer_all(agent, records, 1).ordered()
        assert server.peak == 1
        concurrent, latencies, failures = answer_all(agent, records, concurrency).ordered()
    assert server.peak == concurrency  # never more, and the bound was reached
    assert [row["question_id"] for row in concurrent] == [r.record_id for r in records]
    assert concurrent == sequential
    assert failures == []
    assert len(latencies) == len(records)
    assert min(latencies) >= DELAY_S * 1000
