"""Small real inputs shared by the pipeline tests."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

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
