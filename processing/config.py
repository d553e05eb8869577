"""The run config: one typed, frozen object per pipeline run, validated once and passed to every stage.

Every field is a flat scalar because each one is also a SageMaker pipeline parameter. Backend names are
checked against `processing.backends.names`, a leaf module the factory builds its constructors from, so this
module imports no backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from processing.backends.names import BACKEND_NAMES, LOGPROB_ALTERNATIVES, REQUIRED_FIELDS

PACKAGED_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_EMBEDDING_DIMENSION = 384
MIN_LABEL_ALTERNATIVES = 3  # yes, no and maybe: the decision-label measure normalises over all three
ENDPOINT_NAME = r"^$|^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"  # SageMaker endpoint and endpoint-config names


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the source and the field."""


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment_name: str = Field("ragops-local", min_length=1, description="MLflow experiment of the parent run")
    chunking_strategy: Literal["FixedSizeChunker", "RecursiveChunker"] = "RecursiveChunker"
    chunk_size: int = Field(1000, ge=50, le=8000, description="characters per chunk")
    chunk_overlap: int = Field(100, ge=0, description="characters shared by neighbouring chunks")
    top_k: int = Field(5, ge=1, le=100, description="chunks retrieved per question")
    embeddings: str = "local"
    embedding_model: str = PACKAGED_EMBEDDING_MODEL
    embedding_batch_size: int = Field(64, ge=1, le=1024)
    vector_store: str = "faiss"
    index_name: str = Field(
        "ragops-chunks", pattern=r"^[a-z0-9][a-z0-9_-]{0,180}$", description="alias over the runs' index versions"
    )
    index_retention_hours: int = Field(
        24, ge=1, le=8760, description="publish deletes this index name's other versions older than this"
    )
    ingest_shards: int = Field(1, ge=1, le=64, description="ingest worker processes, each writing its share")
    ingest_instances: int = Field(
        1, ge=1, le=100, description="instances of the sharded ingest step: the chunk stage writes as many shard files"
    )
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(128, ge=2, le=4096)
    hnsw_ef_search: int = Field(100, ge=1, le=4096)
    space_type: Literal["cosinesimil", "innerproduct", "l2"] = "cosinesimil"
    generator: str = Field("local", description="local: the packaged LLM behind a llama-server the run owns")
    local_llm_model: str = Field("smollm2-135m-instruct", description="packaged model the local generator serves")
    local_llm_context_size: int = Field(4096, ge=512, le=32768, description="local server context, in tokens")
    local_llm_threads: int = Field(0, ge=0, le=256, description="local server CPU threads; 0: every core")
    top_logprobs: int = Field(
        10, ge=0, le=20, description="alternatives per token (decision-label confidence); TGI returns at most 5"
    )
    max_answer_tokens: int = Field(256, ge=1, le=8192, description="new tokens per answer, reasoning included")
    reasoning_retry_max_tokens: int = Field(
        0, ge=0, le=16384, description="a reply cut inside <think> is asked once more with this budget; 0: abstain"
    )
    generation_concurrency: int = Field(
        1, ge=1, le=64, description="questions answered (and judged) at once; the local server gets as many slots"
    )
    max_failed_question_share: float = Field(
        0.0, ge=0.0, lt=1.0, description="retrieval: share of questions that may fail (kept with their error)"
    )
    extractive_sentences: int = Field(2, ge=1, le=20, description="sentences the extractive baseline returns")
    judge: str = Field("none", description="none, bedrock, openai (an OpenAI-compatible server) or local")
    judge_url: str = Field("", description="judge=openai: API root incl. version, e.g. http://127.0.0.1:8000/v1")
    judge_model: str = Field("", description="judge=openai: model name the server serves")
    judge_api_key_env: str = Field(
        "", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$", description="judge=openai: env var holding the API key"
    )
    judge_max_in_flight: int = Field(4, ge=1, le=64, description="judge calls running at once")
    min_judge_coverage: float = Field(
        0.9, ge=0.0, le=1.0, description="quality gate: share of rows every judge metric must score"
    )
    pii_action: Literal["report", "redact", "fail"] = Field(
        "report", description="personal data in the dataset: count it, replace it with <TYPE>, or refuse the dataset"
    )
    relevance_threshold: float = Field(0.3, ge=-1.0, le=1.0, description="min retrieval score the grader keeps")
    min_hit_at_k: float = Field(0.0, ge=0.0, le=1.0, description="quality gate on hit@k")
    min_mrr: float = Field(0.0, ge=0.0, le=1.0, description="quality gate on MRR")
    min_answer_embedding_cosine: float = Field(
        0.0, ge=0.0, le=1.0, description="quality gate on the answer's embedding cosine to LONG_ANSWER"
    )
    # AWS backends (processing/backends/cloud.py); "" means not set.
    aws_region: str = Field("", description="region of every AWS client; empty: the boto3 session's region")
    sagemaker_embedding_endpoint: str = Field("", pattern=ENDPOINT_NAME)
    sagemaker_embedding_payload: Literal["jumpstart", "tei"] = "jumpstart"
    embedding_dimension: int = Field(PACKAGED_EMBEDDING_DIMENSION, ge=1, le=16000, description="vector length")
    opensearch_endpoint: str = Field(
        "",
        pattern=r"^$|^(https://)?[^/:\s]+(:\d+)?/?$|^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$",
        description="domain URL; plain http only to a node on this machine (make opensearch), unsigned",
    )
    opensearch_engine: Literal["auto", "faiss", "lucene"] = Field(
        "auto", description="k-NN engine of the index versions; auto: faiss on a domain, lucene on a loopback node"
    )
    opensearch_shards: int = Field(1, ge=1, le=1024)
    opensearch_replicas: int = Field(1, ge=0, le=15, description="capped at data nodes - 1 when the index is made")
    opensearch_bm25_weight: float = Field(0.0, ge=0.0, lt=1.0, description="0: k-NN only; >0: hybrid BM25 + k-NN")
    generator_endpoint: str = Field("", description="SageMaker endpoint (sagemaker-tgi) or imported model ARN")
    generator_api: Literal["generate", "messages"] = Field(
        "generate", description="sagemaker-tgi request: generate (the R1 template here) or messages (server's)"
    )
    generator_tokenizer_path: str = Field("", description="local tokenizer.json to decode bedrock-cmi token ids")
    judge_model_id: str = Field("anthropic.claude-3-haiku-20240307-v1:0", description="Bedrock model for judge=bedrock")
    # On-demand SageMaker endpoints (processing/backends/on_demand.py): created from their config when missing.
    sagemaker_embedding_endpoint_config: str = Field(
        "", pattern=ENDPOINT_NAME, description="create the embedding endpoint from this config; empty: it must exist"
    )
    generator_endpoint_config: str = Field(
        "",
        pattern=ENDPOINT_NAME,
        description="create the sagemaker-tgi endpoint from this config; empty: it must exist",
    )
    environment_name: str = Field(
        "", pattern=r"^([a-z][a-z0-9-]{1,15})?$", description="RagOps environment that tags what a run creates"
    )
    # OpenAI-compatible generator server (generator=openai): vLLM, llama.cpp server, Ollama
    generator_url: str = Field("", description="API root incl. version, e.g. http://127.0.0.1:8000/v1")
    generator_model: str = Field("", description="model name the server serves")
    generator_api_key_env: str = Field(
        "", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$", description="name of the env var holding the API key"
    )
    # Confidence from token log-probabilities (skipped, and logged so, when the generator returns none)
    confidence_measure: Literal["auto", "sequence_confidence", "decision_label"] = Field(
        "auto",
        description="what the agent thresholds: token-mean confidence or label probability; auto: the label "
        "probability where the generator returns top-k alternatives, else the token mean",
    )
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0, description="answer confidence below which the agent acts")
    low_confidence_token_prob: float = Field(0.3, gt=0.0, le=1.0, description="token probability flagged as unsure")
    confidence_max_retries: int = Field(1, ge=0, le=3, description="retries with doubled top_k before abstaining")
    prune_contexts: bool = Field(False, description="drop contexts whose short draft is unconfident")
    prune_threshold: float = Field(-1.0, le=0.0, description="min draft mean logprob a context needs to be kept")
    prune_draft_tokens: int = Field(16, ge=1, le=256, description="tokens per pruning draft")
    prompt_clarity_tokens: int = Field(5, ge=1, le=50, description="first answer tokens scored for prompt clarity")

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto_measure(cls, values: Any) -> Any:
        """`confidence_measure=auto` (the default) becomes the measure the generator's service can feed:
        decision_label needs top-k alternatives, which some services never return (LOGPROB_ALTERNATIVES)."""
        if not isinstance(values, Mapping) or values.get("confidence_measure", "auto") != "auto":
            return values
        alternatives = LOGPROB_ALTERNATIVES.get(str(values.get("generator", "local"))) or 0
        try:
            top_logprobs = int(values.get("top_logprobs", cls.model_fields["top_logprobs"].default))
        except (TypeError, ValueError):
            return values  # the field's own validation names it
        label = alternatives >= MIN_LABEL_ALTERNATIVES and top_logprobs >= MIN_LABEL_ALTERNATIVES
        return {**values, "confidence_measure": "decision_label" if label else "sequence_confidence"}

    @field_validator("embeddings", "vector_store", "generator", "judge")
    @classmethod
    def _registered_backend(cls, value: str, info: Any) -> str:
        known = BACKEND_NAMES[info.field_name]
        if value not in known:
            raise ValueError(f"unknown backend {value!r}; registered: {', '.join(sorted(known))}")
        return value

    @field_validator("local_llm_model")
    @classmethod
    def _packaged_model(cls, value: str) -> str:
        from processing.local_llm.models import LocalModelError, packaged_model

        try:
            return packaged_model(value).name
        except LocalModelError as error:
            raise ValueError(str(error)) from None

    @field_validator("aws_region")
    @classmethod
    def _region_name(cls, value: str) -> str:
        from processing.backends.aws_session import REGION

        if value and not re.fullmatch(REGION, value):
            raise ValueError(f"{value!r} is not an AWS region name such as us-east-1")
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RunConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @model_validator(mode="after")
    def _cloud_backend_fields(self) -> RunConfig:
        for (role, name), field in REQUIRED_FIELDS.items():
            if getattr(self, role) == name and not getattr(self, field).strip():
                raise ValueError(f"{role}={name} needs {field}")
        if self.opensearch_bm25_weight > 0 and self.vector_store != "opensearch":
            raise ValueError("opensearch_bm25_weight > 0 (hybrid search) needs vector_store=opensearch")
        if self.embeddings == "local" and self.embedding_dimension != PACKAGED_EMBEDDING_DIMENSION:
            raise ValueError(
                f"embedding_dimension ({self.embedding_dimension}) must be {PACKAGED_EMBEDDING_DIMENSION}"
                f" with embeddings=local ({PACKAGED_EMBEDDING_MODEL})"
            )
        return self

    @model_validator(mode="after")
    def _on_demand_endpoints(self) -> RunConfig:
        for field, role, backend in (
            ("sagemaker_embedding_endpoint_config", "embeddings", "sagemaker"),
            ("generator_endpoint_config", "generator", "sagemaker-tgi"),
        ):
            if getattr(self, field) and getattr(self, role) != backend:
                raise ValueError(f"{field} applies only to {role}={backend}")
            if getattr(self, field) and not self.environment_name:
                raise ValueError(f"{field} needs environment_name (the tags of the endpoint a run creates)")
        return self

    @model_validator(mode="after")
    def _measure_fits_generator(self) -> RunConfig:
        """Refuse what the generator's service cannot return: more alternatives than it gives (TGI answers 422),
        or the label measure from a service that returns the chosen token's log-probability only."""
        alternatives = LOGPROB_ALTERNATIVES[self.generator]
        if alternatives and self.top_logprobs > alternatives:
            raise ValueError(
                f"top_logprobs ({self.top_logprobs}) is more than generator={self.generator} returns "
                f"(at most {alternatives} alternatives per token)"
            )
        if self.confidence_measure != "decision_label":
            return self
        if alternatives == 0:
            raise ValueError(
                f"confidence_measure=decision_label reads the labels from top-k alternatives, and "
                f"generator={self.generator} returns only the chosen token's log-probability: "
                "use confidence_measure=sequence_confidence or auto"
            )
        if self.top_logprobs < MIN_LABEL_ALTERNATIVES:
            raise ValueError(
                "confidence_measure=decision_label reads the three labels from the top-k alternatives: "
                f"top_logprobs must be at least {MIN_LABEL_ALTERNATIVES}, got {self.top_logprobs}"
            )
        return self

    @model_validator(mode="after")
    def _generation_settings(self) -> RunConfig:
        if self.generator_api != "generate" and self.generator != "sagemaker-tgi":
            raise ValueError("generator_api applies only to generator=sagemaker-tgi")
        if self.reasoning_retry_max_tokens and self.reasoning_retry_max_tokens <= self.max_answer_tokens:
            raise ValueError(
                f"reasoning_retry_max_tokens ({self.reasoning_retry_max_tokens}) must be 0 (no retry) or more "
                f"than max_answer_tokens ({self.max_answer_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _openai_generator_settings(self) -> RunConfig:
        if self.generator == "openai":
            missing = [name for name in ("generator_url", "generator_model") if not getattr(self, name)]
            if missing:
                raise ValueError(f"generator 'openai' needs {' and '.join(missing)}")
        if self.judge == "openai":
            missing = [name for name in ("judge_url", "judge_model") if not getattr(self, name)]
            if missing:
                raise ValueError(f"judge 'openai' needs {' and '.join(missing)}")
        for name in ("generator_url", "judge_url"):
            if getattr(self, name) and urlparse(getattr(self, name)).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, got {getattr(self, name)!r}")
        return self


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"run config {path}: cannot read: {error}") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"run config {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"run config {path}: expected a mapping of field: value, got {type(data).__name__}")
    return data


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """`["top_k=3"]` -> `{"top_k": "3"}`; pydantic coerces the strings to the field types."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected field=value")
        overrides[key.strip()] = value.strip()
    return overrides


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """File values, then overrides; raises ConfigError naming the source and every bad field."""
    values = _read_file(path) if path else {}
    values.update(overrides or {})
    try:
        return RunConfig.model_validate(values)
    except ValidationError as error:
        source = str(path) if path else "defaults"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise ConfigError(f"run config ({source}{' + --set' if overrides else ''}): {problems}") from error


def dump_config(config: RunConfig, path: Path) -> None:
    path.write_text(json.dumps(config.model_dump(), indent=2, sort_keys=True), encoding="utf-8")
