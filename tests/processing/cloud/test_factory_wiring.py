"""The factory builds each AWS backend from the run config, through the preflight, with the config's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.stub import Stubber
from opensearchpy import RequestsHttpConnection

from processing.backends import factory
from processing.backends.bedrock_judge import BedrockConverseTransport
from processing.backends.cloud import REQUIRED_FIELDS
from processing.backends.errors import CloudBackendError
from processing.backends.mlflow_judge import MlflowJudge
from processing.backends.names import LOGPROB_ALTERNATIVES
from processing.backends.opensearch_index import KnnMethod
from processing.backends.opensearch_store import OpenSearchVectorStore
from processing.backends.sagemaker_embedder import SageMakerEmbedder
from processing.config import RunConfig, load_config
from processing.generators.bedrock_cmi import BedrockCustomModelGenerator
from processing.generators.sagemaker_lmi import SageMakerLMIGenerator
from processing.generators.sagemaker_tgi import SageMakerTGIGenerator
from processing.interfaces import Message
from processing.runner import preflight
from tests.processing.cloud.conftest import streaming_body

DOMAIN = "https://vpc-ragops-dev-abc123.eu-west-1.es.amazonaws.com"
CMI_ARN = "arn:aws:bedrock:eu-west-1:111111111111:imported-model/abc123def456"
TRACKING_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/ragops-dev"
# Every cloud backend selected with its required field filled in, in one region.
FULL_SELECTION = {
    "aws_region": "eu-west-1",
    "embeddings": "sagemaker",
    "sagemaker_embedding_endpoint": "ragops-dev-embedding",
    "vector_store": "opensearch",
    "opensearch_endpoint": DOMAIN,
    "generator": "sagemaker-tgi",
    "generator_endpoint": "ragops-dev-llm",
    "top_logprobs": 5,  # TGI's limit
    "judge": "bedrock",
}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, no_instance_metadata: None) -> None:
    """Static test credentials in the environment, as boto3's default chain finds them; nothing is sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def config(**overrides: Any) -> RunConfig:
    """The full AWS selection with `overrides` applied (values given as the CLI would)."""
    return load_config(None, {key: str(value) for key, value in (FULL_SELECTION | overrides).items()})


@pytest.mark.usefixtures("aws_credentials")
def test_sagemaker_embedder_is_built_from_the_config_and_sends_the_jumpstart_request() -> None:
    embedder = factory.build_embedder(config(embedding_batch_size=2, embedding_dimension=2, vector_store="faiss"))
    assert isinstance(embedder, SageMakerEmbedder)
    assert (embedder.endpoint_name, embedder.dimension, embedder.payload_format) == (
        "ragops-dev-embedding",
        2,
        "jumpstart",
    )
    client = embedder._client
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["total_max_attempts"] == 1  # processing.retry owns retries
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": streaming_body({"embedding": [[3.0, 4.0], [1.0, 0.0]]})},
            {
                "EndpointName": "ragops-dev-embedding",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": b'{"text_inputs": ["a", "b"], "mode": "embedding"}',
            },
        )
        np.testing.assert_allclose(embedder.embed(["a", "b"]), [[0.6, 0.8], [1.0, 0.0]])


@pytest.mark.usefixtures("aws_credentials")
@pytest.mark.parametrize(
    ("space_type", "store_space"), [("cosinesimil", "cosine"), ("innerproduct", "innerproduct"), ("l2", "l2")]
)
def test_opensearch_store_gets_the_config_hnsw_settings_and_maps_the_space_type(
    tmp_path: Path, space_type: str, store_space: str
) -> None:
    store = factory.build_vector_store(
        config(
            embeddings="local",
            space_type=space_type,
            hnsw_m=24,
            hnsw_ef_construction=256,
            hnsw_ef_search=80,
            opensearch_shards=3,
            opensearch_replicas=2,
        ),
        tmp_path,
        "r1",
    )
    assert isinstance(store, OpenSearchVectorStore)
    assert (store.index, store.version) == ("ragops-chunks", "r1")
    assert store.method == KnnMethod("faiss", store_space, 384, 24, 256, 80)  # auto: faiss on a domain
    assert store.retention_hours == 24
    assert (store.shards, store.replicas) == (3, 2)
    assert store.bm25_weight is None
    connection = store._client.transport.get_connection()
    assert isinstance(connection, RequestsHttpConnection)
    assert connection.host == "https://vpc-ragops-dev-abc123.eu-west-1.es.amazonaws.com:443"
    assert list(tmp_path.iterdir()) == []  # a remote store keeps no local state


@pytest.mark.usefixtures("no_instance_metadata")
@pytest.mark.parametrize(("engine", "expected"), [("auto", "lucene"), ("faiss", "faiss"), ("lucene", "lucene")])
def test_a_loopback_node_needs_no_aws_and_auto_picks_lucene(tmp_path: Path, engine: str, expected: str) -> None:
    """No credentials exist here: a loopback node is reached unsigned. `auto` is lucene on it, as the local node
    has no faiss library (scripts/opensearch/node.sh); an explicit engine is kept."""
    local = RunConfig(vector_store="opensearch", opensearch_endpoint="http://127.0.0.1:9200", opensearch_engine=engine)
    store = factory.build_vector_store(local, tmp_path, "r1")
    assert store.method.engine == expected
    assert store._client.transport.get_connection().host == "http://127.0.0.1:9200"


@pytest.mark.usefixtures("aws_credentials")
def test_a_bm25_weight_enables_the_hybrid_pipeline_of_the_store(tmp_path: Path) -> None:
    store = factory.build_vector_store(config(opensearch_bm25_weight=0.25), tmp_path, "r1")
    assert store.bm25_weight == 0.25


@pytest.mark.usefixtures("aws_credentials")
def test_opensearch_domain_in_another_region_fails_the_build(tmp_path: Path) -> None:
    with pytest.raises(CloudBackendError) as raised:
        factory.build_vector_store(config(aws_region="us-east-1"), tmp_path, "r1")
    assert str(raised.value) == (
        f"vector_store=opensearch: OpenSearch domain {DOMAIN} is in eu-west-1 but the configured region is us-east-1"
    )


@pytest.mark.usefixtures("aws_credentials")
def test_sagemaker_tgi_generator_targets_the_endpoint_in_the_config_region() -> None:
    generator = factory.build_generator(config(), embedder=None)  # type: ignore[arg-type]
    assert isinstance(generator, SageMakerTGIGenerator)
    assert generator.endpoint_name == "ragops-dev-llm"
    assert generator._client.meta.region_name == "eu-west-1"
    assert generator._client.meta.config.read_timeout == 120
    assert (generator.api, generator.top_n_tokens) == ("generate", 5)  # top_logprobs is sent as top_n_tokens


@pytest.mark.usefixtures("aws_credentials")
def test_the_tgi_messages_api_and_alternatives_come_from_the_config() -> None:
    generator = factory.build_generator(config(generator_api="messages", top_logprobs=3), embedder=None)  # type: ignore[arg-type]
    assert (generator.api, generator.top_n_tokens) == ("messages", 3)
    body = generator.request_body([Message("user", "Q?")], max_tokens=8, logprobs=True)
    assert (body["top_logprobs"], body["max_tokens"]) == (3, 8)


@pytest.mark.usefixtures("aws_credentials")
def test_sagemaker_lmi_generator_targets_the_endpoint_and_uses_the_token_mean_measure() -> None:
    selection = config(generator="sagemaker-lmi")
    generator = factory.build_generator(selection, embedder=None)  # type: ignore[arg-type]
    assert isinstance(generator, SageMakerLMIGenerator)
    assert (generator.endpoint_name, generator._client.meta.region_name) == ("ragops-dev-llm", "eu-west-1")
    assert selection.confidence_measure == "sequence_confidence"


def test_each_generator_declares_the_alternatives_the_config_checks_against() -> None:
    """The run config's capability table (a leaf module) and the generator classes say the same."""
    from processing.backends.extractive import ExtractiveGenerator
    from processing.generators.openai_compatible import OpenAICompatibleGenerator
    from processing.local_llm.generator import LocalLLMGenerator

    classes = {
        "local": LocalLLMGenerator,
        "openai": OpenAICompatibleGenerator,
        "sagemaker-tgi": SageMakerTGIGenerator,
        "sagemaker-lmi": SageMakerLMIGenerator,
        "bedrock-cmi": BedrockCustomModelGenerator,
        "extractive": ExtractiveGenerator,
    }
    assert set(classes) == set(LOGPROB_ALTERNATIVES)
    assert {name: getattr(cls, "MAX_ALTERNATIVES", None) for name, cls in classes.items()} == LOGPROB_ALTERNATIVES


@pytest.mark.usefixtures("aws_credentials")
def test_bedrock_cmi_generator_uses_the_imported_model_arn_and_tokenizer(tokenizer_path: Path) -> None:
    selection = config(generator="bedrock-cmi", generator_endpoint=CMI_ARN, generator_tokenizer_path=tokenizer_path)
    generator = factory.build_generator(selection, embedder=None)  # type: ignore[arg-type]
    assert isinstance(generator, BedrockCustomModelGenerator)
    assert generator.model_id == CMI_ARN
    assert generator._tokenizer is not None
    assert generator._client.meta.service_model.service_name == "bedrock-runtime"


@pytest.mark.usefixtures("aws_credentials")
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"aws_region": "us-east-1"},
            f"generator=bedrock-cmi: imported model {CMI_ARN} is in eu-west-1 but the configured region is us-east-1",
        ),
        (
            {"generator_endpoint": "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/ragops-dev-llm"},
            "generator=bedrock-cmi: generator_endpoint: model_arn must be an imported model ARN",
        ),
        (
            {"generator_tokenizer_path": "missing/tokenizer.json"},
            "generator=bedrock-cmi: generator_tokenizer_path missing/tokenizer.json is not a file",
        ),
    ],
)
def test_bedrock_cmi_misconfiguration_names_the_field(overrides: dict[str, str], message: str) -> None:
    selection = config(**({"generator": "bedrock-cmi", "generator_endpoint": CMI_ARN} | overrides))
    with pytest.raises(CloudBackendError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        factory.build_generator(selection, embedder=None)  # type: ignore[arg-type]


@pytest.mark.usefixtures("aws_credentials")
def test_bedrock_judge_grades_with_the_configured_model() -> None:
    judge = factory.build_judge(config(judge_model_id="anthropic.claude-3-5-haiku-20241022-v1:0"))
    assert isinstance(judge, MlflowJudge)
    assert (judge.model_id, judge.provider) == ("anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock")
    transport = judge.transport
    assert isinstance(transport, BedrockConverseTransport)
    assert transport.model_id == judge.model_id
    assert transport._client.meta.region_name == "eu-west-1"
    assert transport._client.meta.config.retries["total_max_attempts"] == 1  # processing/retry.py is the only layer


@pytest.mark.usefixtures("no_instance_metadata")
@pytest.mark.parametrize(("selection", "field"), sorted(REQUIRED_FIELDS.items()))
def test_check_backends_without_credentials_names_each_selection(selection: tuple[str, str], field: str) -> None:
    role, name = selection
    kept = (field, "top_logprobs")
    values = {"aws_region": "eu-west-1", role: name} | {f: v for f, v in FULL_SELECTION.items() if f in kept}
    with pytest.raises(CloudBackendError, match=f"^{role}={name} needs AWS credentials: none found"):
        factory.check_backends(load_config(None, values))


@pytest.mark.usefixtures("no_instance_metadata")
def test_a_local_config_needs_no_aws_at_all() -> None:
    factory.check_backends(RunConfig())


@pytest.mark.usefixtures("aws_credentials")
def test_preflight_accepts_every_backend_and_a_managed_tracking_server_in_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", TRACKING_ARN)
    preflight(config())


@pytest.mark.usefixtures("aws_credentials")
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            TRACKING_ARN.replace("eu-west-1", "us-east-1"),
            "'ragops-dev' is in us-east-1 but the configured region is eu-west-1",
        ),
        (TRACKING_ARN.replace("mlflow-tracking-server", "endpoint"), "is not a SageMaker MLflow tracking server ARN"),
    ],
)
def test_managed_tracking_server_is_checked_before_any_run(
    monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(CloudBackendError, match=message):
        preflight(RunConfig(aws_region="eu-west-1"))


@pytest.mark.usefixtures("no_instance_metadata")
def test_managed_tracking_server_without_credentials_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", TRACKING_ARN)
    with pytest.raises(CloudBackendError, match=f"^MLFLOW_TRACKING_URI={TRACKING_ARN} needs AWS credentials"):
        preflight(RunConfig())
