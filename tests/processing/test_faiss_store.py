import json
import subprocess
import sys

import faiss
import numpy as np
import pytest

from processing.backends.faiss_store import MANIFEST, FaissStore, HnswParams, IndexStateError
from processing.chunking import chunk_id
from processing.interfaces import Chunk
from tests.processing.helpers import REPO_ROOT

PARAMS = HnswParams(m=16, ef_construction=64, ef_search=32, space_type="cosinesimil")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def chunks_and_vectors(count: int, seed: int = 7):
    vectors = np.random.default_rng(seed).normal(size=(count, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(chunk_id(f"text {i}"), f"text {i}", f"source-{i}") for i in range(count)]
    return chunks, vectors


def test_search_finds_the_stored_vector_first(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(50)
    store = FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL)
    store.upsert(chunks, vectors)
    hits = store.search(vectors[17], 3)
    assert hits[0].chunk_id == chunks[17].chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_upsert_is_idempotent_by_chunk_id(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(20)
    store = FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL)
    assert store.upsert(chunks, vectors) == 20
    assert store.upsert(chunks[:10] + chunks[:10], np.vstack([vectors[:10], vectors[:10]])) == 10
    assert store.count() == 20
    reopened = FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL)
    assert reopened.count() == 20
    assert reopened._index.ntotal == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks-2.jsonl", "index-2.faiss", MANIFEST]


def test_another_process_reads_the_index(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(30)
    FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL).upsert(chunks, vectors)
    np.save(tmp_path.parent / "query.npy", vectors[5])
    script = (
        "import sys, numpy as np; from processing.backends.faiss_store import FaissStore, HnswParams; "
        f"s = FaissStore(sys.argv[1], params=HnswParams(16, 64, 32, 'cosinesimil'), embedding_model={MODEL!r}); "
        "print(s.count(), s.search(np.load(sys.argv[2]), 1)[0].source_id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(tmp_path.parent / "query.npy")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["30", "source-5"]


def test_failed_save_keeps_the_previous_complete_index(tmp_path, monkeypatch) -> None:
    chunks, vectors = chunks_and_vectors(12)
    store = FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL)
    store.upsert(chunks[:6], vectors[:6])

    def write_half_then_fail(index, path):
        with open(path, "wb") as partial:
            partial.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        store.upsert(chunks[6:], vectors[6:])
    monkeypatch.undo()
    assert json.loads((tmp_path / MANIFEST).read_text())["count"] == 6
    assert FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL).count() == 6
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_opening_with_other_build_parameters_fails(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(5)
    FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL).upsert(chunks, vectors)
    other = HnswParams(m=32, ef_construction=64, ef_search=32, space_type="cosinesimil")
    with pytest.raises(IndexStateError, match="index was built with"):
        FaissStore(tmp_path, params=other, embedding_model=MODEL)


def test_stored_vectors_round_trip(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(6)
    store = FaissStore(tmp_path, params=PARAMS, embedding_model=MODEL)
    store.upsert(chunks, vectors)
    ids, stored = store.stored_vectors()
    assert ids == [c.chunk_id for c in chunks]
    np.testing.assert_allclose(stored, vectors, atol=1e-6)
