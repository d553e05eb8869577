"""MLflow bookkeeping: one parent run per pipeline execution, one nested run per stage.

The parent run id travels between stages (and processes) as a small JSON file, so a stage running in its
own process or container re-opens the same parent in the same experiment. A failing stage marks its own
run and the parent FAILED; only the last stage's success marks the parent FINISHED.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from processing.config import RunConfig
from processing.paths import LOCAL_STORE
from processing.signals import stop_behind

LOCAL_TRACKING_URI = f"sqlite:///{LOCAL_STORE / 'mlflow.db'}"
ROLE_TAG = "ragops.role"
PIPELINE_ROLE = "pipeline"
ERROR_TAG = "ragops.error"  # why a run FAILED, on the stage run and on its parent
MAX_TAG_CHARS = 5000  # MLflow keeps tag values up to 8,000 characters


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a SageMaker MLflow ARN in the cloud), else a sqlite store under .ragops/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or LOCAL_TRACKING_URI


def check_tracking_server(aws_region: str) -> None:
    """When MLFLOW_TRACKING_URI is a SageMaker tracking server ARN: well formed, in the run's region, plugin
    installed and credentials present; raises CloudBackendError before any run is created otherwise."""
    from processing.backends.aws_session import preflight
    from processing.tracking_uri import is_managed_tracking_uri, managed_tracking_uri

    uri = tracking_uri()
    if is_managed_tracking_uri(uri):
        context = preflight(f"MLFLOW_TRACKING_URI={uri}", region=aws_region or None, required={})
        managed_tracking_uri(uri, region=context.region)


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store live next to its database file; remote servers choose their own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()


def configure() -> MlflowClient:
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(tracking_uri()))


def flat_params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(key, str(value)) for key, value in values.items()]


@dataclass(frozen=True)
class ParentRun:
    run_id: str
    experiment_id: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run_id": self.run_id, "experiment_id": self.experiment_id}), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ParentRun:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(run_id=data["run_id"], experiment_id=data["experiment_id"])


def start_parent(config: RunConfig, dataset: str) -> ParentRun:
    """Create the RUNNING parent run with every run-config field as a param."""
    client = configure()
    exp = experiment_id(client, config.experiment_name)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = client.create_run(
        exp, run_name=f"{config.chunking_strategy}-{stamp}", tags={ROLE_TAG: PIPELINE_ROLE, "ragops.dataset": dataset}
    )
    client.log_batch(run.info.run_id, params=flat_params(config.model_dump()))
    return ParentRun(run.info.run_id, exp)


def error_text(error: BaseException) -> str:
    """What a failed run records: the exception's type and message (an interrupt has no message)."""
    error = stop_behind(error)
    message = str(error) or "no message"
    return f"{type(error).__name__}: {message}"[:MAX_TAG_CHARS]


def end_status(error: BaseException) -> str:
    """KILLED for a run stopped by a signal (SIGTERM, Ctrl-C), FAILED for any other error."""
    stopped = isinstance(stop_behind(error), KeyboardInterrupt)
    return RunStatus.to_string(RunStatus.KILLED if stopped else RunStatus.FAILED)


def finish_parent(parent: ParentRun, status: str, error: BaseException | None = None) -> None:
    """End the parent run; a failure records its error as the `ragops.error` tag, unless the failing stage's
    own process already recorded a more precise one."""
    client = configure()
    if error is not None and ERROR_TAG not in client.get_run(parent.run_id).data.tags:
        client.set_tag(parent.run_id, ERROR_TAG, error_text(error))
    client.set_terminated(parent.run_id, status)


def log_parent_metrics(parent: ParentRun, metrics: Mapping[str, float]) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    client = configure()
    client.log_batch(parent.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])


@contextmanager
def stage_run(parent: ParentRun, run_name: str) -> Iterator[mlflow.ActiveRun]:
    """A nested run under `parent`; on error both end FAILED (KILLED when stopped by a signal) with the error as
    a tag, and it propagates."""
    configure()
    try:
        with mlflow.start_run(
            run_name=run_name, experiment_id=parent.experiment_id, parent_run_id=parent.run_id
        ) as run:
            try:
                yield run
            except BaseException as error:
                mlflow.set_tag(ERROR_TAG, error_text(error))
                if (status := end_status(error)) == RunStatus.to_string(RunStatus.KILLED):
                    mlflow.end_run(status)  # mlflow would end it FAILED
                raise
    except BaseException as error:
        finish_parent(parent, end_status(error), error)
        raise


def trace_scope(search_traces: Callable[..., Any]) -> str:
    """The keyword `search_traces` (the client's or the fluent one) scopes by. MLflow 3.17 takes `locations=`
    and deprecates `experiment_ids=` (mlflow/tracking/client.py, @deprecated_parameter); 3.0.0, the image's
    client, has only `experiment_ids=`."""
    return "locations" if "locations" in inspect.signature(search_traces).parameters else "experiment_ids"


def persisted_traces(experiment: str, run_id: str) -> int:
    """How many traces the tracking server holds for `run_id`: MLflow logs a failed trace export only as a
    warning, so the count read back (SearchTraces, metadata only) is what shows a dropped trace."""
    client, count, token = configure(), 0, None
    scope = trace_scope(client.search_traces)
    while True:
        page = client.search_traces(
            **{scope: [experiment]}, run_id=run_id, include_spans=False, max_results=500, page_token=token
        )
        count += len(page)
        token = page.token
        if not token:
            return count
