"""The backend names of `processing.backends.names`, mapped to constructors.

Constructors import their heavy libraries lazily, which keeps this module importable from the CDK app with
only the standard library. The names live in the leaf module so the run config can validate them without
importing any backend; a test holds these dicts and that module equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from processing.backends import cloud

if TYPE_CHECKING:
    from pathlib import Path

    from processing.config import RunConfig
    from processing.interfaces import Embedder, Generator, Judge, VectorStore


def _local_embedder(config: RunConfig) -> Embedder:
    from processing.backends.local_embedder import LocalEmbedder

    return LocalEmbedder(config.embedding_model, batch_size=config.embedding_batch_size)


def _faiss_store(config: RunConfig, directory: Path, version: str) -> VectorStore:
    from processing.backends.faiss_store import FaissStore, HnswParams

    params = HnswParams(config.hnsw_m, config.hnsw_ef_construction, config.hnsw_ef_search, config.space_type)
    store_dir = directory / config.index_name
    return FaissStore(store_dir, version=version, params=params, embedding_model=config.embedding_model)


def _extractive_generator(config: RunConfig, embedder: Embedder) -> Generator:
    from processing.backends.extractive import ExtractiveGenerator

    return ExtractiveGenerator(embedder, sentences=config.extractive_sentences)


def _openai_generator(config: RunConfig, embedder: Embedder) -> Generator:
    """The API key is read from the environment variable the config names, never from the config itself."""
    import os

    from processing.generators.openai_compatible import OpenAICompatibleGenerator

    key_env = config.generator_api_key_env
    if key_env and not os.environ.get(key_env):
        raise ValueError(f"generator_api_key_env: environment variable {key_env} is not set")
    api_key = os.environ[key_env] if key_env else None
    return OpenAICompatibleGenerator(
        config.generator_url, config.generator_model, api_key=api_key, top_logprobs=config.top_logprobs
    )


def _local_generator(config: RunConfig, embedder: Embedder) -> Generator:
    """A packaged model behind a llama-server this generator starts now and stops on `close()`."""
    from processing.local_llm.generator import LocalLLMGenerator
    from processing.local_llm.server import ServerSettings

    settings = ServerSettings(
        context_size=config.local_llm_context_size,
        threads=config.local_llm_threads,
        slots=config.generation_concurrency,  # one slot per question in flight
    )
    return LocalLLMGenerator(config.local_llm_model, settings=settings, top_logprobs=config.top_logprobs)


# name -> constructor(config) -> Embedder
EMBEDDERS: dict[str, Callable[..., Any]] = {"local": _local_embedder}
# name -> constructor(config, directory for local state, index version) -> VectorStore
VECTOR_STORES: dict[str, Callable[..., Any]] = {"faiss": _faiss_store}
# name -> constructor(config, embedder) -> Generator
GENERATORS: dict[str, Callable[..., Any]] = {
    "local": _local_generator,
    "extractive": _extractive_generator,
    "openai": _openai_generator,
}
# name -> constructor(config) -> Judge; "none" means judge metrics are recorded as skipped
JUDGES: dict[str, Callable[..., Any] | None] = {"none": None}

# AWS backends (processing.backends.cloud): each constructor also works with the config alone.
EMBEDDERS["sagemaker"] = cloud.sagemaker_embedder
VECTOR_STORES["opensearch"] = cloud.opensearch_store
GENERATORS["sagemaker-tgi"] = cloud.sagemaker_tgi_generator
GENERATORS["bedrock-cmi"] = cloud.bedrock_cmi_generator
JUDGES["bedrock"] = cloud.bedrock_judge

REGISTRIES: dict[str, dict[str, Any]] = {
    "embeddings": EMBEDDERS,
    "vector_store": VECTOR_STORES,
    "generator": GENERATORS,
    "judge": JUDGES,
}


def build_embedder(config: RunConfig) -> Embedder:
    return EMBEDDERS[config.embeddings](config)


def build_vector_store(config: RunConfig, directory: Path, version: str) -> VectorStore:
    """The store opened at `version`, the index version every writer and reader of one run shares."""
    return VECTOR_STORES[config.vector_store](config, directory, version)


def build_generator(config: RunConfig, embedder: Embedder) -> Generator:
    return GENERATORS[config.generator](config, embedder)


def build_judge(config: RunConfig) -> Judge | None:
    constructor = JUDGES[config.judge]
    return None if constructor is None else constructor(config)


def check_backends(config: RunConfig) -> None:
    """Build every selected cloud backend once, before any stage work, so a missing field, absent credentials
    or a region mismatch stop the run with a CloudBackendError naming them instead of failing mid-stage; and
    check that the local generator's server binary and weights are installed."""
    for role, name in cloud.selected(config):
        REGISTRIES[role][name](config)
    if config.generator == "local":  # binary and hash-checked weights present, before any run is recorded
        from processing.local_llm.models import resolve_weights
        from processing.local_llm.server import find_binary

        find_binary()
        resolve_weights(config.local_llm_model)
