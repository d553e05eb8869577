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


def _api_key(field: str, key_env: str) -> str | None:
    """The API key from the environment variable the config names, never from the config itself."""
    import os

    if key_env and not os.environ.get(key_env):
        raise ValueError(f"{field}: environment variable {key_env} is not set")
    return os.environ[key_env] if key_env else None


def _openai_generator(config: RunConfig, embedder: Embedder) -> Generator:
    from processing.generators.openai_compatible import OpenAICompatibleGenerator

    api_key = _api_key("generator_api_key_env", config.generator_api_key_env)
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


def _openai_judge(config: RunConfig, local_generator: Generator | None = None) -> Judge:
    """MLflow's judge metrics graded by an OpenAI-compatible server (vLLM, llama.cpp server, Ollama)."""
    from processing.backends.mlflow_judge import MlflowJudge, generator_transport
    from processing.generators.openai_compatible import OpenAICompatibleGenerator

    api_key = _api_key("judge_api_key_env", config.judge_api_key_env)
    server = OpenAICompatibleGenerator(config.judge_url, config.judge_model, api_key=api_key, top_logprobs=0)
    transport = generator_transport(server)
    return MlflowJudge(
        transport, model_id=config.judge_model, provider="openai", max_in_flight=config.judge_max_in_flight
    )


def _local_judge(config: RunConfig, local_generator: Generator | None = None) -> Judge:
    """MLflow's judge metrics graded by the packaged model: on the run's own llama-server when the generator is
    the same local model (`local_generator`), else on a server this judge starts and stops on `close()`. One
    call at a time whatever `judge_max_in_flight` says: queued requests would spend their timeout waiting."""
    from processing.backends.mlflow_judge import MlflowJudge, generator_transport

    owned = None if local_generator is not None else _local_generator(config, None)
    server = local_generator or owned
    return MlflowJudge(
        generator_transport(server),  # type: ignore[arg-type]
        model_id=server.model_id,  # type: ignore[union-attr]
        provider="local",
        max_in_flight=1,  # the server has one slot: more in flight would only queue there, against the timeout
        release=None if owned is None else owned.close,  # type: ignore[attr-defined]
    )


# name -> constructor(config, local generator to share or None) -> Judge; "none": judge metrics are skipped
JUDGES: dict[str, Callable[..., Any] | None] = {"none": None, "openai": _openai_judge, "local": _local_judge}

# AWS backends (processing.backends.cloud): each constructor also works with the config alone.
EMBEDDERS["sagemaker"] = cloud.sagemaker_embedder
VECTOR_STORES["opensearch"] = cloud.opensearch_store
GENERATORS["sagemaker-tgi"] = cloud.sagemaker_tgi_generator
GENERATORS["sagemaker-lmi"] = cloud.sagemaker_lmi_generator
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


def build_judge(config: RunConfig, local_generator: Generator | None = None) -> Judge | None:
    constructor = JUDGES[config.judge]
    return None if constructor is None else constructor(config, local_generator)


def check_backends(config: RunConfig) -> None:
    """Build every selected cloud backend once, before any stage work, so a missing field, absent credentials
    or a region mismatch stop the run with a CloudBackendError naming them instead of failing mid-stage; and
    check that the local generator's server binary and weights are installed."""
    for role, name in cloud.selected(config):
        REGISTRIES[role][name](config)
    if "local" in (config.generator, config.judge):  # binary and hash-checked weights, before any run exists
        from processing.local_llm.models import resolve_weights
        from processing.local_llm.server import find_binary

        find_binary()
        resolve_weights(config.local_llm_model)
