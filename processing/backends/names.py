"""The backend names a run config may choose, per role, and the field each cloud backend cannot start without.

A leaf module (standard library only, no project import): `processing.config` validates the names here, and
`processing.backends.factory` maps the same names to constructors, so the config and the backends never import
each other. Adding a backend means a name here and a constructor in the factory; a test holds them equal.
"""

from __future__ import annotations

BACKEND_NAMES: dict[str, tuple[str, ...]] = {
    "embeddings": ("local", "sagemaker"),
    "vector_store": ("faiss", "opensearch"),
    "generator": ("local", "extractive", "openai", "sagemaker-tgi", "sagemaker-lmi", "bedrock-cmi"),
    "judge": ("none", "bedrock", "openai", "local"),  # none: judge metrics are recorded as skipped
}

# (config field, backend name) -> the config field that backend cannot start without.
REQUIRED_FIELDS: dict[tuple[str, str], str] = {
    ("embeddings", "sagemaker"): "sagemaker_embedding_endpoint",
    ("vector_store", "opensearch"): "opensearch_endpoint",
    ("generator", "sagemaker-tgi"): "generator_endpoint",
    ("generator", "sagemaker-lmi"): "generator_endpoint",
    ("generator", "bedrock-cmi"): "generator_endpoint",
    ("judge", "bedrock"): "judge_model_id",
}

# generator -> the most top-k alternatives per generated token its service can return: 0 means only the chosen
# token's log-probability (Bedrock Custom Model Import), None no log-probabilities at all (the extractive
# baseline). Each generator class declares the same number as MAX_ALTERNATIVES; a test holds them equal. The
# run config picks and checks the confidence measure from it.
LOGPROB_ALTERNATIVES: dict[str, int | None] = {
    "local": 20,  # llama-server behind the OpenAI chat API, bounded by the API's top_logprobs <= 20
    "extractive": None,
    "openai": 20,  # the OpenAI API's documented top_logprobs bound
    "sagemaker-tgi": 5,  # TGI's --max-top-n-tokens default, which the JumpStart model's environment keeps
    "sagemaker-lmi": 0,  # DJL LMI's Token: id, text, log_prob of the chosen token
    "bedrock-cmi": 0,  # return_logprobs: the chosen token only
}
