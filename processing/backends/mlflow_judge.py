"""LLM-as-judge through MLflow's judge metrics (`mlflow.metrics.genai`, version v1): answer similarity, answer
correctness, answer relevance and faithfulness, scored 1-5 with a justification per row, as `mlflow.evaluate`
logs them (`answer_similarity/v1/mean`, ...). The judge model is reached through `judge_endpoint`, so the
same code grades with Bedrock (Claude 3 Haiku in the cloud) or any OpenAI-compatible server (the embedded
llama-server, vLLM, Ollama).

Calls run `max_in_flight` at a time (MLflow's `max_workers`, one metric after another), each behind the
transport's retry policy. A reply MLflow cannot parse, or a call still failing after its retries, leaves that
row unscored (None, with MLflow's reason as the justification): never a guessed score.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processing.backends.judge_endpoint import Transport, judge_endpoint
from processing.interfaces import Generator, JudgeInput, JudgeScores, Message
from processing.progress import Progress

logger = logging.getLogger(__name__)
METRIC_VERSION = "v1"
# MLflow metric name -> the JudgeInput field it grades against (None: the question and answer only)
METRIC_CONTEXT: dict[str, str | None] = {
    "answer_similarity": "ground_truth",
    "answer_correctness": "ground_truth",
    "answer_relevance": None,
    "faithfulness": "contexts",
}
JUDGE_METRICS = tuple(f"{name}/{METRIC_VERSION}" for name in METRIC_CONTEXT)


def generator_transport(generator: Generator) -> Transport:
    """A chat generator (greedy, with its own retry policy) as a judge transport: the reply text only."""

    def chat(messages: Sequence[Message], max_tokens: int) -> str:
        return generator.generate(messages, max_tokens=max_tokens).text

    return chat


@dataclass
class MlflowJudge:
    """`interfaces.Judge` over MLflow's genai metrics; `close()` runs `release` (a server the judge owns)."""

    transport: Transport
    model_id: str
    provider: str
    max_in_flight: int = 4
    release: Callable[[], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")

    def score(self, rows: Sequence[JudgeInput]) -> dict[str, JudgeScores]:
        import mlflow.metrics.genai as genai
        import pandas as pd

        if not rows:
            return {name: JudgeScores((), ()) for name in JUDGE_METRICS}
        columns: dict[str, Any] = {
            "ground_truth": pd.Series([r.ground_truth for r in rows]),
            "contexts": pd.Series(["\n\n".join(r.contexts) or "(no context retrieved)" for r in rows]),
        }
        answers, questions = pd.Series([r.answer for r in rows]), pd.Series([r.question for r in rows])
        results = {}
        progress = Progress(logger, f"judge metrics scored on {len(rows)} answers", len(METRIC_CONTEXT))
        with judge_endpoint(self.transport, self.provider) as model:
            for name, context in METRIC_CONTEXT.items():
                with warnings.catch_warnings():
                    # Deprecated since MLflow 3.4 for mlflow.genai; the API stays because the processing image
                    # runs MLflow 3.0.0 (the client SageMaker pairs with its managed MLflow server), which has
                    # these v1 metrics and not their replacement's judges.
                    warnings.filterwarnings("ignore", category=FutureWarning, message=".*is deprecated since 3.4")
                    metric = getattr(genai, name)(
                        model=model, metric_version=METRIC_VERSION, max_workers=self.max_in_flight
                    )
                extra = [columns[context]] if context else []
                value = _evaluate(metric, answers, questions, extra)
                scores = tuple(_score(s) for s in value.scores)
                results[f"{name}/{METRIC_VERSION}"] = JudgeScores(scores, tuple(value.justifications))
                progress.tick()
        return results

    def close(self) -> None:
        if self.release is not None:
            self.release()


def _evaluate(metric: Any, answers: Any, questions: Any, extra: list[Any]) -> Any:
    """The metric's `eval_fn`, the callable `mlflow.evaluate` runs per metric (docs/DESIGN.md says why this
    calls it directly). MLflow aggregates every metric, also one with no scored row: the mean and variance of
    an empty list warn there, and the aggregates are not used (metrics/judge.py says why), so only that warning is
    silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="Mean of empty slice")
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="Degrees of freedom <= 0")
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="invalid value encountered")
        return metric.eval_fn(answers, {}, questions, *extra)


def _score(value: Any) -> int | None:
    """MLflow's parsed score when it is on the 1-5 scale the rubrics define, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value) if 1 <= value <= 5 else None
