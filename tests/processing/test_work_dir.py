"""A reused --work-dir starts empty: no run's index holds another run's chunks."""

from __future__ import annotations

from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from tests.processing.helpers import runs_of, write_sample

EXPERIMENT = "work-dir-reuse"


def test_two_runs_in_one_work_dir_index_exactly_their_own_chunks(tmp_path, embedder, mlflow_store) -> None:
    dataset = write_sample(tmp_path / "data", 4)
    work_dir = tmp_path / "work"
    (work_dir / "notes.txt").parent.mkdir()
    (work_dir / "notes.txt").write_text("kept")
    for size in (200, 400):
        config = RunConfig(experiment_name=EXPERIMENT, chunk_size=size, chunk_overlap=20, generator="extractive")
        run_pipeline(config, dataset, work_dir, backends=Backends(config, embedder))
    runs = runs_of(mlflow_store, EXPERIMENT)
    by_parent: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        if parent := run.data.tags.get("mlflow.parentRunId"):
            by_parent.setdefault(parent, {})[run.info.run_name] = run.data.metrics
    assert len(by_parent) == 2
    chunk_counts = set()
    for stages in by_parent.values():
        unique = stages["DataChunking"]["total_unique_chunks_final"]
        assert stages["DataIngestion"]["ingested_count"] == unique
        assert stages["IndexPublish"]["index_document_count"] == unique  # what the published index holds
        chunk_counts.add(unique)
    assert len(chunk_counts) == 2  # the two chunk sizes really cut different corpora
    assert (work_dir / "notes.txt").read_text() == "kept"
