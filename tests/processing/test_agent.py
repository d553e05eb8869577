from processing.agent import prompts
from processing.agent.graph import build_agent
from processing.backends.extractive import ExtractiveGenerator
from processing.backends.faiss_store import FaissStore, HnswParams
from processing.chunking import chunk_id
from processing.config import RunConfig
from processing.interfaces import Chunk
from tests.processing.helpers import sample_records


def make_agent(embedder, tmp_path, threshold=0.3):
    contexts = [c for r in sample_records(4).values() for c in r["CONTEXTS"]]
    chunks = [Chunk(chunk_id(c), c, f"ctx-{i}") for i, c in enumerate(contexts)]
    params = HnswParams(16, 64, 64, "cosinesimil")
    store = FaissStore(tmp_path, version="r1", params=params, embedding_model=embedder.model_id)
    store.write(chunks, embedder.embed(contexts))
    store.publish(len({c.chunk_id for c in chunks}))
    generator = ExtractiveGenerator(embedder, sentences=2)
    config = RunConfig(top_k=3, relevance_threshold=threshold, max_answer_tokens=200)
    return build_agent(embedder, store, generator, config)


def test_answers_from_the_retrieved_context(embedder, tmp_path) -> None:
    state = make_agent(embedder, tmp_path).invoke(
        {"question": "What happens when I delete an object in a versioned bucket?"}
    )
    assert not state["abstained"]
    assert "delete marker" in state["answer"]
    assert state["hits"][0].source_id in {"ctx-0", "ctx-1"}
    assert state["decision"] in {"yes", "no", "maybe"}


def test_abstains_when_nothing_relevant_is_retrieved(embedder, tmp_path) -> None:
    state = make_agent(embedder, tmp_path).invoke({"question": "How long should sourdough bread proof in the fridge?"})
    assert state["hits"]  # retrieval returned chunks ...
    assert state["relevant"] == []  # ... but the grader found none relevant
    assert state["abstained"]
    assert state["answer"] == prompts.load("abstain")
    assert state["decision"] is None
