"""Each generation inside an agent's trace as an MLflow LLM span: prompt in, answer out, token usage and a
log-probability summary as attributes.

The span opens only under an active span (the agent's trace, which LangChain autolog starts per question), so
a generation outside any trace (a benchmark, a test) writes nothing to a tracking store. Token usage is also
set under `mlflow.chat.tokenUsage`, the key newer MLflow UIs total per trace; the processing image's MLflow
3.0.0 client keeps it as a plain attribute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from processing.interfaces import Generation, Generator, Message

USAGE_ATTRIBUTE = "mlflow.chat.tokenUsage"


class TracedGenerator:
    """`generator` with each call recorded as an LLM span of the current trace."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator
        self.model_id = generator.model_id

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        import mlflow
        from mlflow.entities import SpanType

        if mlflow.get_current_active_span() is None:
            return self._generator.generate(messages, max_tokens=max_tokens, logprobs=logprobs)
        with mlflow.start_span(name=f"generate {self.model_id}", span_type=SpanType.LLM) as span:
            span.set_inputs(
                {
                    "messages": [{"role": m.role, "content": m.content} for m in messages],
                    "max_tokens": max_tokens,
                    "logprobs": logprobs,
                }
            )
            generation = self._generator.generate(messages, max_tokens=max_tokens, logprobs=logprobs)
            span.set_outputs({"answer": generation.text, "reasoning": generation.reasoning})
            span.set_attributes(span_attributes(generation))
        return generation


def span_attributes(generation: Generation) -> dict[str, Any]:
    """Model, stop reason, token counts and the log-probability summary of one generation (None: not returned)."""
    attributes: dict[str, Any] = {
        "model_id": generation.model_id,
        "stop_reason": generation.stop_reason,
        "truncated_in_reasoning": generation.truncated_in_reasoning,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
    }
    if generation.prompt_tokens is not None and generation.completion_tokens is not None:
        attributes[USAGE_ATTRIBUTE] = {
            "input_tokens": generation.prompt_tokens,
            "output_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        }
    scored = generation.logprobs
    if scored is None or not scored.logprobs:
        return attributes | {"logprobs": "not returned" if scored is None else "no scored tokens"}
    values = scored.logprobs
    return attributes | {
        "logprobs": "returned",
        "logprob_tokens": len(values),
        "logprob_mean": math.fsum(values) / len(values),
        "logprob_min": min(values),
        "logprob_alternatives": scored.alternatives is not None,
    }
