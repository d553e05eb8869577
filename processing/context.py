"""What a stage gets besides its config and directories: the parent run and lazily built backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from processing.backends import cloud, factory
from processing.config import RunConfig

if TYPE_CHECKING:
    from processing.interfaces import Embedder, Generator, Judge, VectorStore
    from processing.tracking import ParentRun


@dataclass
class Backends:
    """Builds each backend on first use and keeps it, so in-process runs load the embedding model, start a local
    LLM server or bring up an on-demand SageMaker endpoint once. `close()` (or leaving `with Backends(...)`)
    releases what was built, such as that server, on success and on failure alike."""

    config: RunConfig
    embedder_instance: Embedder | None = None
    generator_instance: Generator | None = field(default=None, repr=False)
    judge_instance: Judge | None = field(default=None, repr=False)

    def embedder(self) -> Embedder:
        if self.embedder_instance is None:
            cloud.bring_up_endpoint(self.config, "embeddings")
            self.embedder_instance = factory.build_embedder(self.config)
        return self.embedder_instance

    def vector_store(self, directory: Path, version: str) -> VectorStore:
        return factory.build_vector_store(self.config, directory, version)

    def generator(self) -> Generator:
        if self.generator_instance is None:
            embedder = self.embedder()
            cloud.bring_up_endpoint(self.config, "generator")
            self.generator_instance = factory.build_generator(self.config, embedder)
        return self.generator_instance

    def judge(self) -> Judge | None:
        """The configured judge; `judge=local` grades on the generator's own server when that is the same model."""
        if self.judge_instance is None:
            shared = self.config.judge == "local" and self.config.generator == "local"
            self.judge_instance = factory.build_judge(self.config, self.generator() if shared else None)
        return self.judge_instance

    def close(self) -> None:
        for backend in (self.judge_instance, self.generator_instance):
            close = getattr(backend, "close", None)
            if close is not None:
                close()
        self.judge_instance = self.generator_instance = None

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class StageContext:
    parent: ParentRun
    backends: Backends

    @property
    def index_version(self) -> str:
        """The run's index version: its MLflow parent run id, which every stage and ingest shard of the run
        reads from the same parent-run file, in any process or on any instance."""
        return self.parent.run_id
