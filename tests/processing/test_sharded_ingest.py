"""Local sharded ingest: N worker processes write parts of one version, and publish yields the index one writer
would have built; the chunk shard files it reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from processing.backends.faiss_store import FaissStore, HnswParams
from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from processing.stages.chunk import read_chunks, write_chunk_shards
from tests.processing.helpers import runs_of, write_sample

EXPERIMENT = "sharded-ingest"


def published_store(run_dir: Path, config: RunConfig, version: str) -> FaissStore:
    params = HnswParams(config.hnsw_m, config.hnsw_ef_construction, config.hnsw_ef_search, config.space_type)
    store_dir = run_dir / "index" / config.index_name
    return FaissStore(store_dir, version=version, params=params, embedding_model=config.embedding_model)


def test_two_ingest_shards_publish_the_same_ids_and_count_as_one(
    tmp_path: Path, embedder: Any, mlflow_store: str
) -> None:
    dataset = write_sample(tmp_path / "data", 6)
    contents = {}
    for shards in (1, 2):
        config = RunConfig(
            experiment_name=EXPERIMENT, generator="extractive", chunk_size=200, chunk_overlap=20, ingest_shards=shards
        )
        parent, _ = run_pipeline(config, dataset, tmp_path / f"shards-{shards}", backends=Backends(config, embedder))
        ids, vectors = published_store(tmp_path / f"shards-{shards}", config, parent.run_id).stored_vectors()
        staged = tmp_path / f"shards-{shards}" / "staged" / config.index_name / "staging" / parent.run_id
        manifest = json.loads((tmp_path / f"shards-{shards}" / "chunks" / "manifest.json").read_text())
        contents[shards] = {"ids": ids, "vectors": vectors, "parts": len(list(staged.glob("part-*"))), **manifest}

    one, two = contents[1], contents[2]
    assert (one["parts"], two["parts"]) == (1, 2)  # two worker processes each wrote a part
    assert one["unique_chunks"] == two["unique_chunks"] == len(one["ids"]) > 10
    assert one["ids"] == two["ids"]
    np.testing.assert_allclose(one["vectors"], two["vectors"], atol=1e-5)
    ingestion = [r for r in runs_of(mlflow_store, EXPERIMENT) if r.info.run_name == "DataIngestion"]
    assert sorted(r.data.params["ingest_shards"] for r in ingestion) == ["1", "2"]
    assert {r.data.metrics["ingested_count"] for r in ingestion} == {one["unique_chunks"]}


def test_chunk_shard_files_split_the_corpus_and_read_back_in_order(tmp_path: Path) -> None:
    from processing.interfaces import Chunk

    chunks = [Chunk(f"{i:032x}", f"text {i}", f"doc-{i}", {"position": "context-0"}) for i in range(25)]
    assert write_chunk_shards(chunks, tmp_path, per_shard=10) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    assert read_chunks(tmp_path) == chunks
    assert json.loads((tmp_path / "manifest.json").read_text())["unique_chunks"] == 25


def test_reading_chunks_without_shards_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"shards: no chunk shards \(the chunk stage writes them\)"):
        read_chunks(tmp_path)
