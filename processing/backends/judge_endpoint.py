"""The judge model as an MLflow Deployments endpoint, so MLflow's own LLM-judge metrics call it.

`mlflow.metrics.genai` metrics given `model="endpoints:/<name>"` send each grading prompt to the deployments
client of the current target. This module is that target's plugin (registered in-process through MLflow's
plugin store, target `ragops-judge://run`): `predict` hands the prompt to the transport registered under the
endpoint name, which is where the client is injected (Bedrock Converse, or an OpenAI-compatible server) and
where the one retry policy (`processing/retry.py`) applies. MLflow builds the prompts, parses the score and
justification and runs the calls `max_workers` at a time.

Why not `bedrock:/<model>`: MLflow's gateway provider then builds its own boto3 client from environment
variables, with botocore's default retries on top of any of ours and no way to inject a client for tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mlflow.deployments.base import BaseDeploymentClient
from mlflow.exceptions import MlflowException

from processing.interfaces import Message

TARGET_NAME = "ragops-judge"
TARGET_URI = f"{TARGET_NAME}://run"
CHAT_TASK = "llm/v1/chat"

Transport = Callable[[Sequence[Message], int], str]
"""(chat messages, max tokens) -> the reply text; raises once its retries are spent."""

_TRANSPORTS: dict[str, Transport] = {}
_names = itertools.count(1)


def _register_plugin() -> None:
    from mlflow.deployments.interface import plugin_store

    if TARGET_NAME not in plugin_store.registry:
        plugin_store.register(TARGET_NAME, __name__)


@contextmanager
def judge_endpoint(transport: Transport, label: str) -> Iterator[str]:
    """`with judge_endpoint(transport, "bedrock") as uri:` -> `endpoints:/<name>` for MLflow metrics."""
    from mlflow.deployments import set_deployments_target

    _register_plugin()
    set_deployments_target(TARGET_URI)
    name = f"{label}-{next(_names)}"
    _TRANSPORTS[name] = transport
    try:
        yield f"endpoints:/{name}"
    finally:
        del _TRANSPORTS[name]


def _transport(endpoint: str | None) -> Transport:
    try:
        return _TRANSPORTS[str(endpoint)]
    except KeyError:
        raise MlflowException(f"no judge endpoint {endpoint!r} is open in this evaluation") from None


def _not_managed(*_: Any, **__: Any) -> Any:
    raise MlflowException("judge endpoints exist only during an evaluation; they are not deployed or managed")


class JudgeDeploymentClient(BaseDeploymentClient):
    """The chat endpoint MLflow's metrics call; model deployment operations are refused."""

    create_deployment = update_deployment = delete_deployment = _not_managed
    list_deployments = get_deployment = _not_managed

    def get_endpoint(self, endpoint: str) -> dict[str, str]:
        _transport(endpoint)
        return {"name": endpoint, "task": CHAT_TASK, "endpoint_type": CHAT_TASK}

    def predict(self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None) -> Any:
        """An OpenAI-style chat request from MLflow -> the transport's reply as an OpenAI-style response."""
        messages = [Message(m["role"], m["content"]) for m in inputs["messages"]]
        text = _transport(endpoint or deployment_name)(messages, int(inputs.get("max_tokens") or 200))
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def run_local(target: str, name: str, model_uri: str, flavor: str | None = None, config: Any = None) -> None:
    _not_managed()


def target_help() -> str:
    return "In-process judge endpoints of a RagOps evaluation (processing/backends/judge_endpoint.py)."
