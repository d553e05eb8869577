"""Running the stages: in this process (`single`) or each as its own process through the stage entry point
(`multi`, as SageMaker runs them), with the nested MLflow runs under one parent either way."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from processing.backends.factory import check_backends
from processing.config import RunConfig, dump_config
from processing.context import Backends, StageContext
from processing.datasets import load_dataset
from processing.paths import PARENT_RUN_FILE
from processing.stages.registry import DATASET_INPUT, STAGES, StageSpec
from processing.tracking import (
    ParentRun,
    check_tracking_server,
    end_status,
    finish_parent,
    stage_run,
    start_parent,
)

CONFIG_FILE = "run_config.json"

logger = logging.getLogger(__name__)


def preflight(config: RunConfig) -> None:
    """Check every cloud backend the config selects and a managed MLflow server, before any run exists:
    a bad field, missing credentials or a region mismatch raise CloudBackendError and nothing is recorded."""
    check_backends(config)
    check_tracking_server(config.aws_region)


def run_stage(
    spec: StageSpec, config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext
) -> None:
    """One stage inside its nested run; the last stage's success finishes the parent run."""
    missing = [name for name in spec.inputs if name not in inputs]
    if missing:
        raise ValueError(f"stage {spec.stage_id}: missing input(s) {', '.join(missing)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    context.parent.write(output_dir / PARENT_RUN_FILE)
    function = spec.load()
    logger.info("stage %d/%d %s", STAGES.index(spec) + 1, len(STAGES), spec.run_name)
    with stage_run(context.parent, spec.run_name):
        function(config, {name: Path(inputs[name]) for name in spec.inputs}, output_dir, context)
    if spec is STAGES[-1]:
        finish_parent(context.parent, "FINISHED")


def stage_dirs(work_dir: Path, dataset: Path) -> dict[str, Path]:
    return {DATASET_INPUT: dataset, **{spec.output: work_dir / spec.output for spec in STAGES}}


def clear_work_dir(work_dir: Path) -> None:
    """Remove what an earlier run left in `work_dir` (every stage output, the parent and config files), so a
    reused directory never mixes that run's chunks or index into this one's; anything else there is kept."""
    for spec in STAGES:
        output = work_dir / spec.output
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        else:
            output.unlink(missing_ok=True)
    for name in (PARENT_RUN_FILE, CONFIG_FILE):
        (work_dir / name).unlink(missing_ok=True)


def _stage_command(spec: StageSpec, config_file: Path, dirs: Mapping[str, Path], parent_file: Path) -> list[str]:
    command = [sys.executable, "-m", "processing", "stage", spec.stage_id, "--config", str(config_file)]
    for name in spec.inputs:
        command += ["--input", f"{name}={dirs[name]}"]
    return [*command, "--output-dir", str(dirs[spec.output]), "--parent-run-file", str(parent_file)]


STAGE_STOP_TIMEOUT_S = 60.0  # a stopped stage process ends its runs and its server; SageMaker's grace is longer


def run_stage_process(command: list[str]) -> int:
    """Run one stage process to its end; returns its exit status. If this process is stopped meanwhile (SIGTERM,
    Ctrl-C, any error), the stage process gets SIGTERM, so it marks its run KILLED and stops its own server,
    and is killed if it has not ended within STAGE_STOP_TIMEOUT_S."""
    process = subprocess.Popen(command)  # noqa: S603 - our own interpreter and CLI, arguments built here
    try:
        return process.wait()
    except BaseException:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STAGE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def run_pipeline(
    config: RunConfig, dataset: Path, work_dir: Path, *, mode: str = "single", backends: Backends | None = None
) -> tuple[ParentRun, Path]:
    """Run every stage; returns the parent run and the report's path. Raises on the first failing stage.

    The dataset is validated first, so a malformed one is reported before the backends are checked (a missing
    server is not the first thing to fix) and before any run exists."""
    load_dataset(dataset)
    preflight(config)
    outputs = {(work_dir / spec.output).resolve() for spec in STAGES}
    if outputs & {dataset.resolve(), *dataset.resolve().parents}:
        raise ValueError(f"--dataset {dataset} lies in a stage output of --work-dir {work_dir}, which a run replaces")
    clear_work_dir(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    parent = start_parent(config, dataset.name)
    parent_file = work_dir / PARENT_RUN_FILE
    parent.write(parent_file)
    dirs = stage_dirs(work_dir, dataset)
    try:
        if mode == "single":
            owned = backends or Backends(config)
            try:
                context = StageContext(parent, owned)
                for spec in STAGES:
                    run_stage(spec, config, dirs, dirs[spec.output], context)
            finally:
                if backends is None:  # a caller's backends stay the caller's to close
                    owned.close()
        else:
            dump_config(config, work_dir / CONFIG_FILE)
            for spec in STAGES:
                status = run_stage_process(_stage_command(spec, work_dir / CONFIG_FILE, dirs, parent_file))
                if status:
                    raise StageFailedError(f"stage {spec.stage_id} exited with status {status}")
    except BaseException as error:
        finish_parent(parent, end_status(error), error)
        raise
    return parent, dirs[STAGES[-1].output] / "report.json"


class StageFailedError(RuntimeError):
    """A stage process of a multi-process run failed (its own error is on stderr)."""
