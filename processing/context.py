"""What a stage gets besides its config and directories: the parent run and lazily built backends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from processing.backends import factory
from processing.config import RunConfig

if TYPE_CHECKING:
    from processing.interfaces import Embedder, Generator, Judge, VectorStore
    from processing.tracking import ParentRun


@dataclass
class Backends:
    """Builds each backend on first use and keeps it, so in-process runs load the embedding model once."""

    config: RunConfig
    embedder_instance: Embedder | None = None

    def embedder(self) -> Embedder:
        if self.embedder_instance is None:
            self.embedder_instance = factory.build_embedder(self.config)
        return self.embedder_instance

    def vector_store(self, directory: Path) -> VectorStore:
        return factory.build_vector_store(self.config, directory)

    def generator(self) -> Generator:
        return factory.build_generator(self.config, self.embedder())

    def judge(self) -> Judge | None:
        return factory.build_judge(self.config)


@dataclass
class StageContext:
    parent: ParentRun
    backends: Backends
