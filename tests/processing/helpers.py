"""Small real inputs shared by the pipeline tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from processing.agent.prompts import CONTEXT_SEPARATOR
from processing.tracking import trace_scope

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILE = REPO_ROOT / "data" / "sample" / "cloud_ops_qa.json"


def sample_records(count: int) -> dict[str, dict]:
    records = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    return dict(list(records.items())[:count])


def write_sample(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "qa.json"
    path.write_text(json.dumps(sample_records(count)), encoding="utf-8")
    return path


def runs_of(tracking_uri: str, experiment_name: str, status: str | None = None) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    where = f"attributes.status = '{status}'" if status else ""
    return [] if experiment is None else client.search_runs([experiment.experiment_id], where, max_results=1000)


def traces_of(experiment_id: str, run_id: str) -> list:
    """A run's traces, scoped by the keyword the installed MLflow takes."""
    scope = trace_scope(mlflow.search_traces)
    return mlflow.search_traces(**{scope: [experiment_id]}, run_id=run_id, return_type="list")


def read_answer_prompt(messages: list[dict]) -> tuple[str, list[str]]:
    """(question, contexts) from the rendered answer prompt a test server received in a chat request body."""
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    context = re.search(r"<context>\n(.*)\n</context>", user, re.DOTALL)
    question = re.search(r"<question>(.*)</question>", user, re.DOTALL)
    assert context, "the request does not carry the answer prompt's <context>"
    assert question, "the request does not carry the answer prompt's <question>"
    return question.group(1).strip(), [c for c in context.group(1).split(CONTEXT_SEPARATOR) if c.strip()]
