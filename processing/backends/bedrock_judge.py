"""LLM-as-judge metrics on Amazon Bedrock (Claude 3 Haiku by default) through `bedrock-runtime` `Converse`.

Why not MLflow's judge metrics: mlflow 3.17.2's `genai` scorers fail with Bedrock judges (mlflow#24033), and
its deprecated `mlflow.metrics.genai` metrics build their own Bedrock client from environment variables inside
the gateway provider, so neither the client nor the request can be checked offline. Here the client is
injected, the request is exactly what the tests assert, and the rubrics live in the repository
(`prompts/judge_rubrics.yaml`). A reply without a usable 1-5 score gives None for that row, never 0, and is
counted in `unparsed` so the run can log how often the judge failed to grade.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from processing.backends.errors import CloudBackendError
from processing.interfaces import JudgeInput
from processing.retry import RetryPolicy, call_with_retries, is_transient_aws_error

DEFAULT_JUDGE_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
RUBRICS_PATH = Path(__file__).with_name("prompts") / "judge_rubrics.yaml"
JUDGE_METRICS = ("answer_correctness", "judge_answer_similarity", "answer_relevance", "faithfulness")


@dataclass(frozen=True)
class Rubrics:
    system: str
    templates: Mapping[str, Template]

    @classmethod
    def load(cls, path: Path = RUBRICS_PATH) -> Rubrics:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        templates = {name: Template(spec["template"]) for name, spec in document["metrics"].items()}
        missing = [name for name in JUDGE_METRICS if name not in templates]
        if missing:
            raise ValueError(f"{path}: no rubric for {', '.join(missing)}")
        return cls(system=document["system"], templates=templates)


def parse_score(reply: str) -> float | None:
    """The first JSON object's integer `score` in 1..5 mapped to [0, 1]; None when there is none."""
    decoder = json.JSONDecoder()
    for start in (position for position, char in enumerate(reply) if char == "{"):
        try:
            parsed, _ = decoder.raw_decode(reply, start)
        except ValueError:
            continue
        score = parsed.get("score") if isinstance(parsed, dict) else None
        if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5:
            return (score - 1) / 4
        return None
    return None


class BedrockJudge:
    """`interfaces.Judge`: one `Converse` call per metric and row, temperature 0, bounded retries."""

    def __init__(
        self,
        client: Any,
        *,
        model_id: str = DEFAULT_JUDGE_MODEL,
        max_tokens: int = 256,
        temperature: float = 0.0,
        metrics: Sequence[str] = JUDGE_METRICS,
        rubrics: Rubrics | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        unknown = [name for name in metrics if name not in JUDGE_METRICS]
        if unknown:
            raise ValueError(f"unknown judge metrics {', '.join(unknown)} (known: {', '.join(JUDGE_METRICS)})")
        self._client = client
        self.model_id = model_id
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.metrics = tuple(metrics)
        self._rubrics = rubrics or Rubrics.load()
        self._retry = retry or RetryPolicy(initial_delay_s=0.5)
        self.unparsed: dict[str, int] = dict.fromkeys(self.metrics, 0)

    def score(self, rows: Sequence[JudgeInput]) -> dict[str, list[float | None]]:
        """Scores in [0, 1] per metric and row; `unparsed` then counts the rows each metric left as None."""
        scores = {metric: [parse_score(self._ask(metric, row)) for row in rows] for metric in self.metrics}
        self.unparsed = {metric: values.count(None) for metric, values in scores.items()}
        return scores

    def _ask(self, metric: str, row: JudgeInput) -> str:
        contexts = "\n".join(f"[{number}] {text}" for number, text in enumerate(row.contexts, start=1))
        prompt = self._rubrics.templates[metric].safe_substitute(
            question=row.question, answer=row.answer, ground_truth=row.ground_truth, contexts=contexts or "(none)"
        )
        request = {
            "modelId": self.model_id,
            "system": [{"text": self._rubrics.system}],
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        try:
            response = call_with_retries(
                lambda: self._client.converse(**request),
                policy=self._retry,
                retryable=is_transient_aws_error,
                target=f"Bedrock judge {self.model_id} failed on {metric}",
                error_type=CloudBackendError,
            )
        except (ClientError, BotoCoreError) as error:
            raise CloudBackendError(f"Bedrock judge {self.model_id} failed on {metric}: {error}") from error
        content = response.get("output", {}).get("message", {}).get("content", [])
        return "".join(block.get("text", "") for block in content)
