import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import faiss
import numpy as np
import pytest

from processing.backends.faiss_store import MANIFEST, FaissStore, HnswParams, IndexStateError
from processing.chunking import chunk_id
from processing.interfaces import Chunk, CountMismatchError, VectorStore
from tests.processing.helpers import REPO_ROOT

PARAMS = HnswParams(m=16, ef_construction=64, ef_search=32, space_type="cosinesimil")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def chunks_and_vectors(count: int, seed: int = 7):
    vectors = np.random.default_rng(seed).normal(size=(count, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(chunk_id(f"text {i}"), f"text {i}", f"source-{i}") for i in range(count)]
    return chunks, vectors


def store_at(directory, version: str = "v1", params: HnswParams = PARAMS) -> FaissStore:
    return FaissStore(directory, version=version, params=params, embedding_model=MODEL)


def published(directory, chunks, vectors, version: str = "v1") -> FaissStore:
    store = store_at(directory, version)
    store.write(chunks, vectors)
    store.publish(len({c.chunk_id for c in chunks}))
    return store


def test_search_finds_the_stored_vector_first(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(50)
    store = published(tmp_path, chunks, vectors)
    assert isinstance(store, VectorStore)
    hits = store.search(vectors[17], 3)
    assert hits[0].chunk_id == chunks[17].chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_version_is_not_searchable_before_its_publish(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(5)
    store = store_at(tmp_path)
    assert store.write(chunks, vectors) == 5
    assert store.count() == 0
    with pytest.raises(IndexStateError, match="version v1 is not published"):
        store.search(vectors[0], 1)
    assert not (tmp_path / MANIFEST).exists()


def test_writes_in_any_split_publish_the_same_index(tmp_path) -> None:
    """Parts are merged by chunk id and built in id order: one writer or three give byte-identical indices."""
    chunks, vectors = chunks_and_vectors(40)
    one = published(tmp_path / "one", chunks, vectors)
    split = store_at(tmp_path / "split")
    for part in (slice(25, 40), slice(0, 10), slice(10, 25)):
        split.write(chunks[part], vectors[part])
    split.write(chunks[:5], vectors[:5])  # a chunk written twice is stored once
    assert split.publish(40) == 40
    for name in ("index.faiss", "chunks.jsonl"):
        assert (tmp_path / "one/versions/v1" / name).read_bytes() == (
            tmp_path / "split/versions/v1" / name
        ).read_bytes()
    assert one.stored_vectors()[0] == split.stored_vectors()[0]
    assert not (tmp_path / "split/staging/v1").exists()


def _write_share(directory, share: int, shares: int) -> int:
    chunks, vectors = chunks_and_vectors(30)
    return store_at(directory).write(chunks[share::shares], vectors[share::shares])


def test_writers_in_separate_processes_stage_parts_one_publish_reads(tmp_path) -> None:
    with ProcessPoolExecutor(3, mp_context=get_context("spawn")) as pool:
        written = list(pool.map(_write_share, [tmp_path] * 3, range(3), [3] * 3))
    assert written == [10, 10, 10]
    store = store_at(tmp_path)
    assert store.publish(30) == 30
    assert store.count() == 30


def test_publish_refuses_a_short_version_naming_both_counts_and_keeps_the_current_one(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(12)
    published(tmp_path, chunks[:6], vectors[:6], version="v1")
    short = store_at(tmp_path, "v2")
    short.write(chunks[:11], vectors[:11])
    with pytest.raises(CountMismatchError, match="holds 11 chunks, expected 12: not published") as error:
        short.publish(12)
    assert (error.value.expected, error.value.indexed) == (12, 11)
    assert json.loads((tmp_path / MANIFEST).read_text())["version"] == "v1"
    assert store_at(tmp_path, "v1").count() == 6


def test_publishing_a_new_version_replaces_the_manifest_and_drops_the_previous_files(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(12)
    published(tmp_path, chunks[:6], vectors[:6], version="v1")
    published(tmp_path, chunks, vectors, version="v2")
    assert json.loads((tmp_path / MANIFEST).read_text())["version"] == "v2"
    assert [p.name for p in (tmp_path / "versions").iterdir()] == ["v2"]
    assert store_at(tmp_path, "v2").count() == 12


def test_another_process_reads_the_index(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(30)
    published(tmp_path, chunks, vectors)
    np.save(tmp_path.parent / "query.npy", vectors[5])
    script = (
        "import sys, numpy as np; from processing.backends.faiss_store import FaissStore, HnswParams; "
        "s = FaissStore(sys.argv[1], version='v1', params=HnswParams(16, 64, 32, 'cosinesimil'), "
        f"embedding_model={MODEL!r}); print(s.count(), s.search(np.load(sys.argv[2]), 1)[0].source_id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(tmp_path.parent / "query.npy")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["30", "source-5"]


def test_failed_publish_keeps_the_previous_complete_version(tmp_path, monkeypatch) -> None:
    chunks, vectors = chunks_and_vectors(12)
    published(tmp_path, chunks[:6], vectors[:6], version="v1")
    store = store_at(tmp_path, "v2")
    store.write(chunks, vectors)

    def write_half_then_fail(index, path):
        with open(path, "wb") as partial:
            partial.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        store.publish(12)
    monkeypatch.undo()
    assert json.loads((tmp_path / MANIFEST).read_text())["version"] == "v1"
    assert store_at(tmp_path, "v1").count() == 6
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == ["v1"]
    assert store.publish(12) == 12  # the staged parts are still there


def test_opening_with_other_build_parameters_fails(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(5)
    published(tmp_path, chunks, vectors)
    other = HnswParams(m=32, ef_construction=64, ef_search=32, space_type="cosinesimil")
    with pytest.raises(IndexStateError, match="index was built with"):
        store_at(tmp_path, params=other).count()


def test_version_names_are_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"index version '\.\./x' must be 1-64 lowercase letters or digits"):
        store_at(tmp_path, "../x")


def test_stored_vectors_round_trip_in_chunk_id_order(tmp_path) -> None:
    chunks, vectors = chunks_and_vectors(6)
    store = published(tmp_path, chunks, vectors)
    ids, stored = store.stored_vectors()
    order = sorted(range(6), key=lambda i: chunks[i].chunk_id)
    assert ids == [chunks[i].chunk_id for i in order]
    np.testing.assert_allclose(stored, vectors[order], atol=1e-6)
