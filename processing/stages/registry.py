"""The pipeline's stages in order, described without importing them.

Only the standard library is used here: the CDK app imports this module to build the SageMaker pipeline
definition from the same list the local runner uses. Stage functions are resolved from their dotted path
only when a stage actually runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StageSpec:
    stage_id: str
    run_name: str  # the nested MLflow run's name
    function: str  # "module:function" with signature (config, inputs, output_dir, context) -> None
    inputs: tuple[str, ...]  # names of the directories the stage reads (outputs of earlier stages or "dataset")
    output: str  # name of the directory the stage writes
    sharded_input: str | None = None  # an input whose SHARDS_DIR files the stage's instances split between them

    def load(self) -> Callable[..., Any]:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


DATASET_INPUT = "dataset"
SHARDS_DIR = "shards"  # in a sharded input, the sub-directory of its shard files

STAGES: tuple[StageSpec, ...] = (
    StageSpec("prepare", "DataPreparation", "processing.stages.prepare:run", (DATASET_INPUT,), "prepared"),
    StageSpec("chunk", "DataChunking", "processing.stages.chunk:run", ("prepared",), "chunks"),
    StageSpec("ingest", "DataIngestion", "processing.stages.ingest:run", ("chunks",), "staged", sharded_input="chunks"),
    StageSpec("publish", "IndexPublish", "processing.stages.publish:run", ("chunks", "staged"), "index"),
    StageSpec("retrieve", "RAGRetrieval", "processing.stages.retrieve:run", ("prepared", "index"), "answers"),
    StageSpec(
        "evaluate", "RAGEvaluation", "processing.stages.evaluate:run", ("prepared", "chunks", "answers"), "report"
    ),
)


def stage(stage_id: str) -> StageSpec:
    for spec in STAGES:
        if spec.stage_id == stage_id:
            return spec
    raise KeyError(f"unknown stage {stage_id!r}; stages: {', '.join(s.stage_id for s in STAGES)}")
