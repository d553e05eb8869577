import pytest

from processing.agent import prompts
from processing.agent.graph import build_agent
from processing.backends.extractive import ExtractiveGenerator
from processing.backends.faiss_store import FaissStore, HnswParams
from processing.chunking import chunk_id
from processing.config import RunConfig
from processing.interfaces import Chunk, Message
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


class RecordingEmbedder:
    """Unit vectors, the first text's closest to every other: records what the generator asked to embed."""

    model_id, dimension = "recording", 2

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        import numpy as np

        self.texts = list(texts)
        return np.array([[1.0, 0.0]] + [[1.0 / (i + 1), 0.0] for i in range(len(texts) - 1)], dtype=np.float32)


def test_the_extractive_baseline_reads_question_and_contexts_as_data_not_from_the_rendered_prompt() -> None:
    """A context holding the prompt's separator or its tags stays one context, and the question stays whole."""
    contexts = ["Rotate keys yearly.\n\n---\n\nTag <question>secrets</question> rarely.", "Backups run nightly."]
    embedder = RecordingEmbedder()
    generator = ExtractiveGenerator(embedder, sentences=1)
    generator.generate(prompts.answer_messages("How often do backups run?", contexts), max_tokens=50)
    assert embedder.texts == [
        "How often do backups run?",
        "Rotate keys yearly. --- Tag <question>secrets</question> rarely.",
        "Backups run nightly.",
    ]
    with pytest.raises(ValueError, match="answers the agent's answer prompt only"):
        generator.generate([Message("user", "How often do backups run?")], max_tokens=50)
