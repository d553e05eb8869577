import json
import subprocess
import sys

import pytest

from processing.backends import factory
from processing.backends.names import BACKEND_NAMES
from processing.config import ConfigError, RunConfig, load_config, parse_overrides
from processing.stages.registry import STAGES
from tests.processing.helpers import REPO_ROOT


def test_defaults_are_valid_and_flat_scalars() -> None:
    config = RunConfig()
    assert config.chunking_strategy == "RecursiveChunker"
    assert all(isinstance(v, str | int | float | bool) for v in config.model_dump().values())


def test_file_then_overrides_with_type_coercion(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("chunking_strategy: FixedSizeChunker\nchunk_size: 400\n")
    config = load_config(path, parse_overrides(["top_k=3", "relevance_threshold=0.5", "chunk_overlap=40"]))
    assert (config.chunking_strategy, config.chunk_size, config.top_k) == ("FixedSizeChunker", 400, 3)
    assert config.relevance_threshold == 0.5
    json_path = tmp_path / "run.json"
    json_path.write_text(json.dumps({"hnsw_m": 32}))
    assert load_config(json_path).hnsw_m == 32


def test_config_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        RunConfig().top_k = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"top_k": "many"}, "top_k: Input should be a valid integer"),
        ({"chunk_sise": "10"}, "chunk_sise: Extra inputs are not permitted"),
        ({"chunking_strategy": "Sentences"}, "chunking_strategy: Input should be 'FixedSizeChunker' or"),
        ({"chunk_size": "200", "chunk_overlap": "200"}, "chunk_overlap (200) must be smaller than chunk_size (200)"),
        (
            {"generator": "gpt"},
            "generator: Value error, unknown backend 'gpt'; registered: bedrock-cmi, extractive, local, openai",
        ),
        ({"index_name": "Bad Name"}, "index_name: String should match pattern"),
        ({"generator": "openai"}, "generator 'openai' needs generator_url and generator_model"),
        ({"generator": "openai", "generator_url": "http://127.0.0.1:8000/v1"}, "needs generator_model"),
        ({"generator_url": "127.0.0.1:8000"}, "generator_url must be an http(s) URL"),
        ({"generator_api_key_env": "sk-123"}, "generator_api_key_env: String should match pattern"),
        ({"confidence_threshold": "1.5"}, "confidence_threshold: Input should be less than or equal to 1"),
        ({"prune_threshold": "0.5"}, "prune_threshold: Input should be less than or equal to 0"),
        (
            {"top_logprobs": "0", "confidence_measure": "decision_label"},
            "confidence_measure=decision_label reads the three labels from the top-k",
        ),
        ({"generator_api": "messages"}, "generator_api applies only to generator=sagemaker-tgi"),
        (
            {"max_answer_tokens": "1024", "reasoning_retry_max_tokens": "1024"},
            "reasoning_retry_max_tokens (1024) must be 0 (no retry) or more than max_answer_tokens (1024)",
        ),
        ({"local_llm_model": "gpt-x"}, "unknown local model 'gpt-x'; packaged: smollm2-135m-instruct"),
    ],
)
def test_errors_name_the_field(overrides, message) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert message in str(error.value)


SAGEMAKER_TGI = {"generator": "sagemaker-tgi", "generator_endpoint": "llm"}
CMI_ARN = "arn:aws:bedrock:us-east-1:111111111111:imported-model/a"
BEDROCK_CMI = {"generator": "bedrock-cmi", "generator_endpoint": CMI_ARN}


@pytest.mark.parametrize(
    ("overrides", "measure"),
    [
        ({}, "decision_label"),  # the local server returns top-k alternatives
        ({**SAGEMAKER_TGI, "top_logprobs": "5"}, "decision_label"),
        (BEDROCK_CMI, "sequence_confidence"),  # return_logprobs: the chosen token only
        ({"generator": "sagemaker-lmi", "generator_endpoint": "llm"}, "sequence_confidence"),  # LMI: likewise
        ({"generator": "extractive"}, "sequence_confidence"),
        ({"top_logprobs": "0"}, "sequence_confidence"),
    ],
)
def test_auto_picks_the_measure_the_generator_can_feed(overrides, measure) -> None:
    assert load_config(None, overrides).confidence_measure == measure


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {**BEDROCK_CMI, "confidence_measure": "decision_label"},
            "confidence_measure=decision_label reads the labels from top-k alternatives, and generator=bedrock-cmi "
            "returns only the chosen token's log-probability",
        ),
        (SAGEMAKER_TGI, "top_logprobs (10) is more than generator=sagemaker-tgi returns (at most 5"),
    ],
)
def test_a_measure_the_generator_cannot_feed_is_refused_at_validation(overrides, message) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert message in str(error.value)


def test_bad_file_and_bad_override_syntax(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"run.yaml: expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="--set 'top_k': expected field=value"):
        parse_overrides(["top_k"])


def test_the_config_and_the_factory_share_one_list_of_backend_names() -> None:
    constructors = {role: sorted(registry) for role, registry in factory.REGISTRIES.items()}
    assert constructors == {role: sorted(names) for role, names in BACKEND_NAMES.items()}
    with pytest.raises(ConfigError, match="unknown backend 'scripted'; registered: bedrock-cmi, extractive"):
        load_config(None, {"generator": "scripted"})


def test_the_config_imports_no_backend_module() -> None:
    """The config validates names from a leaf module, so config and backends never import each other."""
    script = "import sys, processing.config; print(sorted(m for m in sys.modules if m.startswith('processing.b')))"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(["processing.backends", "processing.backends.names"])


HEAVY = ("boto3", "botocore", "opensearchpy", "numpy", "mlflow", "torch", "faiss", "langgraph", "pydantic")


@pytest.mark.parametrize(
    ("module", "probe", "expected"),
    [
        ("processing.stages.registry", "[s.run_name for s in m.STAGES]", str([s.run_name for s in STAGES])),
        ("processing.backends.factory", "'sagemaker' in m.EMBEDDERS and 'bedrock' in m.JUDGES", "True"),
    ],
)
def test_synth_time_modules_import_with_the_standard_library_only(module, probe, expected) -> None:
    """The CDK app imports these: they must not pull in the pipeline's heavy libraries."""
    script = f"import sys, {module} as m; heavy = set({HEAVY!r}) & set(sys.modules); print(sorted(heavy) or {probe})"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_every_stage_function_resolves() -> None:
    from processing.stages.registry import STAGES

    assert [s.stage_id for s in STAGES] == ["prepare", "chunk", "ingest", "publish", "retrieve", "evaluate"]
    assert all(callable(s.load()) for s in STAGES)


def test_openai_generator_is_built_with_the_key_from_the_named_environment_variable(monkeypatch) -> None:
    config = load_config(
        None,
        {
            "generator": "openai",
            "generator_url": "http://127.0.0.1:8000/v1",
            "generator_model": "m",
            "generator_api_key_env": "RAGOPS_KEY",
        },
    )
    monkeypatch.delenv("RAGOPS_KEY", raising=False)
    with pytest.raises(ValueError, match="generator_api_key_env: environment variable RAGOPS_KEY is not set"):
        factory.build_generator(config, None)
    monkeypatch.setenv("RAGOPS_KEY", "secret")
    generator = factory.build_generator(config, None)
    assert (generator.url, generator.model_id) == ("http://127.0.0.1:8000/v1/chat/completions", "m")
    assert "secret" not in json.dumps(config.model_dump())
