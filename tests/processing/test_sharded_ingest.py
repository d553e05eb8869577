"""Local sharded ingest: N worker processes write parts of one version, and publish yields the index one writer
would have built; the chunk shard files it reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from processing.backends.faiss_store import FaissStore, HnswParams
from processing.config import RunConfig
from processing.context import Backends, StageContext
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


@pytest.mark.parametrize(("chunks", "instances", "files"), [(3, 2, 2), (1, 2, 1), (25, 2, 3), (25, 4, 4), (0, 2, 0)])
def test_small_corpora_get_a_shard_file_per_ingest_instance(
    tmp_path: Path, chunks: int, instances: int, files: int
) -> None:
    """ShardedByS3Key hands each instance about 1/n of the S3 objects and "some nodes won't get any data" when
    there are fewer objects than instances (botocore's sagemaker model, S3DataSource.S3DataDistributionType)."""
    from processing.interfaces import Chunk

    corpus = [Chunk(f"{i:032x}", f"text {i}", f"doc-{i}", {"position": "context-0"}) for i in range(chunks)]
    names = write_chunk_shards(corpus, tmp_path, per_shard=10, instances=instances)
    assert len(names) == files
    sizes = [len((tmp_path / "shards" / name).read_text().splitlines()) for name in names]
    assert all(size >= 1 for size in sizes)
    assert max(sizes, default=0) - min(sizes, default=0) <= 1
    assert read_chunks(tmp_path) == corpus


def test_a_sharded_ingest_instance_without_shard_files_exits_cleanly_and_publish_counts_every_chunk(
    tmp_path: Path, mlflow_store: str
) -> None:
    """Two ingest instances, as SageMaker may split them: one gets every shard file, the other none (its input
    folder absent, or present and empty). Each exits 0; the version published holds every unique chunk."""
    from processing.cli import main
    from processing.runner import run_stage
    from processing.stages.registry import stage
    from processing.tracking import start_parent

    config = RunConfig(experiment_name="empty-shard", generator="extractive", ingest_instances=2)
    work = tmp_path / "work"
    parent = start_parent(config, "sample")
    with Backends(config) as backends:
        context = StageContext(parent, backends)
        dirs = {"dataset": write_sample(tmp_path / "data", 2), "prepared": work / "prepared", "chunks": work / "chunks"}
        for stage_id in ("prepare", "chunk"):
            run_stage(stage(stage_id), config, dirs, dirs[stage(stage_id).output], context)
    assert len(list((work / "chunks" / "shards").iterdir())) == 2  # fewer than 10,000 chunks, two files
    (work / "empty" / "shards").mkdir(parents=True)
    parent_file = work / "chunks" / "parent_run.json"
    common = ["--set", "experiment_name=empty-shard", "--set", "generator=extractive", "--parent-run-file"]
    for instance, share in (("a", work / "chunks"), ("b", work / "absent"), ("c", work / "empty")):
        argv = ["stage", "ingest", "--input", f"chunks={share}", "--output-dir", str(work / f"staged-{instance}")]
        assert main([*argv, *common, str(parent_file)]) == 0, instance
    for instance in ("b", "c"):  # an instance writes only its own files; S3 merges the outputs under one prefix
        shutil.copytree(work / f"staged-{instance}", work / "staged-a", dirs_exist_ok=True)
    argv = ["stage", "publish", "--input", f"chunks={work / 'chunks'}", "--input", f"staged={work / 'staged-a'}"]
    assert main([*argv, "--output-dir", str(work / "index"), *common, str(parent_file)]) == 0
    runs = {r.info.run_id: r for r in runs_of(mlflow_store, "empty-shard")}
    ingests = sorted(r.data.metrics["ingested_count"] for r in runs.values() if r.info.run_name == "DataIngestion")
    (publish,) = [r for r in runs.values() if r.info.run_name == "IndexPublish"]
    assert ingests == [0, 0, publish.data.metrics["expected_chunk_count"]]
    assert publish.data.metrics["index_document_count"] == publish.data.metrics["expected_chunk_count"]
    stages = [r for r in runs.values() if "mlflow.parentRunId" in r.data.tags]
    assert len(stages) == 6
    assert {r.info.status for r in stages} == {"FINISHED"}
