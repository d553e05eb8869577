"""IndexPublish: reconcile the run's index version with the chunk count, then make it the current one.

A separate stage (and SageMaker step) after every ingest writer has finished: the version must hold exactly the
unique chunks the chunk stage produced, else the run fails naming both numbers and the alias stays where it
was. The stage works on its own copy of the ingest output, so a store that keeps local files (faiss) publishes
into this stage's output directory, which is what retrieval reads.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from processing.config import RunConfig
from processing.context import StageContext
from processing.stages.chunk import expected_chunks


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    expected = expected_chunks(inputs["chunks"])
    if inputs["staged"].resolve() != output_dir.resolve():
        shutil.copytree(inputs["staged"], output_dir, dirs_exist_ok=True)
    store = context.backends.vector_store(output_dir, context.index_version)
    mlflow.log_params({"index_name": config.index_name, "index_version": context.index_version})
    started = time.perf_counter()
    indexed = store.publish(expected)
    mlflow.log_metrics(
        {
            "expected_chunk_count": expected,
            "index_document_count": indexed,
            "publish_seconds": time.perf_counter() - started,
        }
    )
