"""Constructors for the AWS backends a run config can select, registered in `processing.backends.factory`.

Each one goes through `aws_session.preflight` first (its required field, credentials, region, the region a
resource lives in), so a misconfigured cloud backend fails with one sentence naming the selection and field.
The factory builds every selected one before any stage work (`check_backends`); building makes no network
call. Imports stay inside the functions: this module, like the factory, loads with the standard library only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from processing.backends.names import REQUIRED_FIELDS

if TYPE_CHECKING:
    import boto3
    from opensearchpy.connection import Connection

    from processing.backends.aws_session import AwsContext
    from processing.config import RunConfig
    from processing.interfaces import Embedder, Generator, Judge, VectorStore

GENERATOR_READ_TIMEOUT_S = 120.0


def _aws(
    config: RunConfig,
    role: str,
    session: boto3.Session | None,
    resource_regions: dict[str, str | None] | None = None,
) -> AwsContext:
    from processing.backends.aws_session import preflight

    name = getattr(config, role)
    field = REQUIRED_FIELDS[(role, name)]
    return preflight(
        f"{role}={name}",
        region=config.aws_region or None,
        required={field: getattr(config, field)},
        resource_regions=resource_regions,
        session=session,
    )


def sagemaker_embedder(config: RunConfig, *, session: boto3.Session | None = None) -> Embedder:
    from processing.backends.sagemaker_embedder import SageMakerEmbedder

    context = _aws(config, "embeddings", session)
    return SageMakerEmbedder(
        context.client("sagemaker-runtime"),
        endpoint_name=config.sagemaker_embedding_endpoint,
        dimension=config.embedding_dimension,
        payload_format=config.sagemaker_embedding_payload,
        batch_size=config.embedding_batch_size,
    )


def opensearch_store(
    config: RunConfig,
    directory: Path | None = None,
    version: str = "preflight",
    *,
    session: boto3.Session | None = None,
    connection_class: type[Connection] | None = None,
) -> VectorStore:
    """Version `version` of the k-NN index behind the alias `index_name`; `directory` (local state) is not used
    by a remote store. Building makes no request, so the preflight builds it with a placeholder version. A node
    on this machine's loopback (`make opensearch`) is reached without AWS: no credentials, no signing."""
    from opensearchpy import RequestsHttpConnection

    from processing.backends.aws_session import opensearch_endpoint_region
    from processing.backends.opensearch_client import is_loopback, opensearch_client
    from processing.backends.opensearch_index import SPACE_TYPES
    from processing.backends.opensearch_store import OpenSearchVectorStore

    endpoint = config.opensearch_endpoint
    connection_class = connection_class or RequestsHttpConnection
    if is_loopback(endpoint):
        client = opensearch_client(endpoint, connection_class=connection_class)
    else:
        context = _aws(
            config, "vector_store", session, {f"OpenSearch domain {endpoint}": opensearch_endpoint_region(endpoint)}
        )
        client = opensearch_client(
            endpoint, region=context.region, session=context.session, connection_class=connection_class
        )
    # The local node (scripts/opensearch) carries no faiss native library (k-NN issue #2643): indexing a faiss
    # field there kills the node with UnsatisfiedLinkError, so `auto` picks lucene for it.
    engine = config.opensearch_engine
    if engine == "auto":
        engine = "lucene" if is_loopback(endpoint) else "faiss"
    store_space_type = {opensearch: ours for ours, opensearch in SPACE_TYPES.items()}[config.space_type]
    return OpenSearchVectorStore(
        client,
        index=config.index_name,
        version=version,
        dimension=config.embedding_dimension,
        engine=engine,
        space_type=store_space_type,
        m=config.hnsw_m,
        ef_construction=config.hnsw_ef_construction,
        ef_search=config.hnsw_ef_search,
        shards=config.opensearch_shards,
        replicas=config.opensearch_replicas,
        bm25_weight=config.opensearch_bm25_weight or None,
        retention_hours=config.index_retention_hours,
    )


def sagemaker_tgi_generator(
    config: RunConfig, embedder: Embedder | None = None, *, session: boto3.Session | None = None
) -> Generator:
    from processing.generators.sagemaker_tgi import SageMakerTGIGenerator

    context = _aws(config, "generator", session)
    client = context.client("sagemaker-runtime", read_timeout=GENERATOR_READ_TIMEOUT_S)
    return SageMakerTGIGenerator(
        config.generator_endpoint, api=config.generator_api, top_n_tokens=config.top_logprobs, client=client
    )


def sagemaker_lmi_generator(
    config: RunConfig, embedder: Embedder | None = None, *, session: boto3.Session | None = None
) -> Generator:
    from processing.generators.sagemaker_lmi import SageMakerLMIGenerator

    context = _aws(config, "generator", session)
    client = context.client("sagemaker-runtime", read_timeout=GENERATOR_READ_TIMEOUT_S)
    return SageMakerLMIGenerator(config.generator_endpoint, client=client)


def bedrock_cmi_generator(
    config: RunConfig, embedder: Embedder | None = None, *, session: boto3.Session | None = None
) -> Generator:
    from processing.backends.aws_session import arn_region
    from processing.backends.errors import CloudBackendError
    from processing.generators.bedrock_cmi import BedrockCustomModelGenerator

    arn, tokenizer = config.generator_endpoint, config.generator_tokenizer_path
    context = _aws(config, "generator", session, {f"imported model {arn}": arn_region(arn)})
    if tokenizer and not Path(tokenizer).is_file():
        raise CloudBackendError(f"generator=bedrock-cmi: generator_tokenizer_path {tokenizer} is not a file")
    client = context.client("bedrock-runtime", read_timeout=GENERATOR_READ_TIMEOUT_S)
    try:
        return BedrockCustomModelGenerator(arn, tokenizer_path=tokenizer or None, client=client)
    except ValueError as error:
        raise CloudBackendError(f"generator=bedrock-cmi: generator_endpoint: {error}") from error


def bedrock_judge(
    config: RunConfig, local_generator: Generator | None = None, *, session: boto3.Session | None = None
) -> Judge:
    """MLflow's judge metrics graded by a Bedrock model through Converse (`backends/bedrock_judge.py`)."""
    from processing.backends.aws_session import arn_region
    from processing.backends.bedrock_judge import BedrockConverseTransport
    from processing.backends.mlflow_judge import MlflowJudge

    model = config.judge_model_id
    context = _aws(config, "judge", session, {f"judge model {model}": arn_region(model)})
    transport = BedrockConverseTransport(context.client("bedrock-runtime"), model_id=model)
    return MlflowJudge(transport, model_id=model, provider="bedrock", max_in_flight=config.judge_max_in_flight)


# role -> (endpoint name field, endpoint config field) of the SageMaker endpoints a run may bring up.
ON_DEMAND_FIELDS = {
    "embeddings": ("sagemaker_embedding_endpoint", "sagemaker_embedding_endpoint_config"),
    "generator": ("generator_endpoint", "generator_endpoint_config"),
}


def bring_up_endpoint(config: RunConfig, role: str, *, session: boto3.Session | None = None) -> None:
    """Before the first call of `role`'s backend: when the config names an endpoint config for it (an on-demand
    endpoint), create or update the endpoint from it and wait until it is InService. A no-op otherwise."""
    from processing.backends.on_demand import OnDemandEndpoint, ensure_in_service

    name_field, config_field = ON_DEMAND_FIELDS[role]
    if not getattr(config, config_field):
        return
    context = _aws(config, role, session)
    endpoint = OnDemandEndpoint(getattr(config, name_field), getattr(config, config_field), config.environment_name)
    ensure_in_service(context.client("sagemaker"), endpoint)


def selected(config: RunConfig) -> list[tuple[str, str]]:
    """The (config field, backend name) pairs of the cloud backends this config selects."""
    return [(role, name) for role, name in REQUIRED_FIELDS if getattr(config, role) == name]
