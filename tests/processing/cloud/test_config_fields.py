"""The run config's AWS fields: defaults that keep a local run local, and every rule naming its field."""

from __future__ import annotations

import pytest

from processing.backends.cloud import REQUIRED_FIELDS
from processing.config import ConfigError, RunConfig, load_config

DOMAIN = "https://vpc-ragops-dev-abc123.us-east-1.es.amazonaws.com"
CMI_ARN = "arn:aws:bedrock:us-east-1:111111111111:imported-model/abc123def456"


def test_defaults_select_no_cloud_backend_and_are_pipeline_parameters() -> None:
    config = RunConfig()
    cloud_fields = {
        "aws_region": "",
        "sagemaker_embedding_endpoint": "",
        "sagemaker_embedding_payload": "jumpstart",
        "embedding_dimension": 384,
        "opensearch_endpoint": "",
        "opensearch_shards": 1,
        "opensearch_replicas": 1,
        "opensearch_bm25_weight": 0.0,
        "generator_endpoint": "",
        "generator_tokenizer_path": "",
        "judge_model_id": "anthropic.claude-3-haiku-20240307-v1:0",
    }
    assert {name: getattr(config, name) for name in cloud_fields} == cloud_fields
    assert all(type(value) in (str, int, float, bool) for value in config.model_dump().values())


def test_a_complete_aws_selection_is_accepted() -> None:
    config = load_config(
        None,
        {
            "aws_region": "us-east-1",
            "embeddings": "sagemaker",
            "sagemaker_embedding_endpoint": "ragops-dev-embedding",
            "sagemaker_embedding_payload": "tei",
            "embedding_dimension": "768",
            "vector_store": "opensearch",
            "opensearch_endpoint": DOMAIN,
            "opensearch_shards": "2",
            "opensearch_replicas": "0",
            "opensearch_bm25_weight": "0.3",
            "generator": "bedrock-cmi",
            "generator_endpoint": CMI_ARN,
            "generator_tokenizer_path": "tokenizer.json",
            "judge": "bedrock",
        },
    )
    assert (config.embedding_dimension, config.opensearch_shards, config.opensearch_bm25_weight) == (768, 2, 0.3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aws_region": "Virginia"}, "aws_region: Value error, 'Virginia' is not an AWS region name"),
        ({"sagemaker_embedding_endpoint": "bad_name!"}, "sagemaker_embedding_endpoint: String should match pattern"),
        ({"sagemaker_embedding_payload": "openai"}, "sagemaker_embedding_payload: Input should be 'jumpstart' or"),
        ({"embedding_dimension": "0"}, "embedding_dimension: Input should be greater than or equal to 1"),
        ({"embedding_dimension": "20000"}, "embedding_dimension: Input should be less than or equal to 16000"),
        ({"opensearch_endpoint": "https://host/path"}, "opensearch_endpoint: String should match pattern"),
        ({"opensearch_endpoint": "http://host:9200"}, "opensearch_endpoint: String should match pattern"),
        ({"opensearch_shards": "0"}, "opensearch_shards: Input should be greater than or equal to 1"),
        ({"opensearch_replicas": "-1"}, "opensearch_replicas: Input should be greater than or equal to 0"),
        ({"opensearch_bm25_weight": "1.0"}, "opensearch_bm25_weight: Input should be less than 1"),
        ({"opensearch_bm25_weight": "-0.1"}, "opensearch_bm25_weight: Input should be greater than or equal to 0"),
        ({"embeddings": "openai"}, "embeddings: Value error, unknown backend 'openai'; registered: local, sagemaker"),
    ],
)
def test_field_errors_name_the_field(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides)
    assert message in str(raised.value)


@pytest.mark.parametrize(("selection", "field"), sorted(REQUIRED_FIELDS.items()))
def test_each_cloud_backend_names_its_required_field(selection: tuple[str, str], field: str) -> None:
    role, name = selection
    with pytest.raises(ConfigError) as raised:
        load_config(None, {role: name, field: ""})
    assert f"{role}={name} needs {field}" in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"opensearch_bm25_weight": "0.2"}, "opensearch_bm25_weight > 0 (hybrid search) needs vector_store=opensearch"),
        ({"embedding_dimension": "768"}, "embedding_dimension (768) must be 384 with embeddings=local"),
    ],
)
def test_cross_field_rules(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides)
    assert message in str(raised.value)
