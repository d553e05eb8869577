"""Command line: `run` the pipeline, run one `stage` (the container entry point), `compare` recent runs."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from processing.config import RunConfig, load_config, parse_overrides
from processing.paths import LOCAL_STORE, PARENT_RUN_FILE, REPO_ROOT
from processing.progress import log_to_console
from processing.signals import Interrupted, stop_behind, stop_on_signals
from processing.stages.registry import STAGES

DEFAULT_DATASET = REPO_ROOT / "data" / "sample"
EXIT_BAD_INPUT = 2


def _config_options(parser: argparse.ArgumentParser) -> None:
    fields = ", ".join(RunConfig.model_fields)
    parser.add_argument("--config", type=Path, help="run config file (.yaml/.yml/.json); defaults apply otherwise")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"override a field: {fields}",
    )
    parser.add_argument(
        "--ingest-shards",
        type=int,
        metavar="N",
        help="ingest with N worker processes (the same as --set ingest_shards=N); the index is the same for any N",
    )


def _load(args: argparse.Namespace) -> RunConfig:
    overrides = parse_overrides(args.overrides)
    if args.ingest_shards is not None:
        overrides["ingest_shards"] = str(args.ingest_shards)
    return load_config(args.config, overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m processing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole pipeline under one MLflow parent run")
    _config_options(run)
    run.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="PubMedQA JSON/JSONL file or folder")
    run.add_argument(
        "--mode",
        choices=["single", "multi"],
        default="single",
        help="single: stages in this process; multi: each stage in its own process, like the SageMaker steps",
    )
    run.add_argument("--work-dir", type=Path, help="where stage outputs go (default: .ragops/runs/<timestamp>)")

    stage = commands.add_parser("stage", help="run one stage (the processing container's entry point)")
    stage.add_argument("stage_id", choices=[s.stage_id for s in STAGES], help="which stage (in pipeline order)")
    _config_options(stage)
    input_names = "; ".join(f"{s.stage_id}: {', '.join(s.inputs)}" for s in STAGES)
    stage.add_argument(
        "--input", dest="inputs", action="append", default=[], metavar="NAME=DIR", help=f"input dir ({input_names})"
    )

    stage.add_argument("--output-dir", type=Path, required=True, help="directory the stage writes")
    stage.add_argument(
        "--parent-run-file",
        type=Path,
        help=f"JSON naming the MLflow parent run (created with a new parent run if absent); "
        f"default: {PARENT_RUN_FILE} from an input directory, else a new parent run",
    )

    compare = commands.add_parser("compare", help="compare the latest pipeline runs side by side")
    compare.add_argument("--last", type=int, default=2, help="how many of the latest parent runs (default 2)")
    compare.add_argument("--experiment", default=RunConfig.model_fields["experiment_name"].default)
    compare.add_argument("--chart", type=Path, default=LOCAL_STORE / "compare.png", help="PNG chart path")

    pipeline = commands.add_parser("pipeline", help="work with the deployed SageMaker pipelines")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    start = pipeline_commands.add_parser(
        "start", help="start an execution with the image pinned by digest; prints its ARN as the last line"
    )
    start.add_argument("--env", required=True, help="environment whose pipeline to start (dev, staging, prod)")
    start.add_argument("--variant", choices=["single", "multi"], default="single", help="pipeline shape")
    start.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="run-config field (or ImageUri, GitSha, DatasetS3Uri) to override for this execution",
    )
    start.add_argument(
        "--promoted",
        type=Path,
        help="promotion record (JSON) of the previous environment: its run_config, less environment-bound "
        "fields, is the starting point (--set overrides it); the run must be the record's commit and image digest",
    )
    start.add_argument("--git-sha", help="commit of the image (default: $GITHUB_SHA, else git rev-parse HEAD)")
    start.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from processing.runner import run_pipeline
    from processing.summary import summary_lines

    config = _load(args)
    work_dir = args.work_dir or LOCAL_STORE / "runs" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    _, report = run_pipeline(config, args.dataset, work_dir, mode=args.mode)
    print("\n".join(summary_lines(json.loads(report.read_text(encoding="utf-8")), report)))
    return 0


def stage_inputs(stage_id: str, pairs: Sequence[str]) -> dict[str, Path]:
    """`--input NAME=DIR` flags, checked against the stage's inputs: every one given, known and an existing
    directory (the dataset may be a file; a sharded input may be absent, as on an instance SageMaker gave no
    shard file). Raises ValueError naming the flag, before any run exists."""
    from processing.stages.registry import DATASET_INPUT, stage

    expected, sharded = stage(stage_id).inputs, stage(stage_id).sharded_input
    dirs: dict[str, Path] = {}
    for pair in pairs:
        name, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"--input {pair!r}: expected NAME=DIR")
        if name not in expected:
            raise ValueError(
                f"--input {pair!r}: stage {stage_id} has no input {name!r} (its inputs: {', '.join(expected)})"
            )
        path = Path(value)
        if not (path.is_dir() or (name == DATASET_INPUT and path.is_file()) or (name == sharded and not path.exists())):
            raise ValueError(f"--input {pair!r}: {path} is not an existing directory")
        dirs[name] = path
    missing = [name for name in expected if name not in dirs]
    if missing:
        raise ValueError(f"stage {stage_id} needs " + " ".join(f"--input {name}=DIR" for name in missing))
    return dirs


def _stage(args: argparse.Namespace) -> int:
    from processing.context import Backends, StageContext
    from processing.runner import preflight, run_stage
    from processing.stages.registry import stage
    from processing.tracking import ParentRun, start_parent

    config = _load(args)
    inputs = stage_inputs(args.stage_id, args.inputs)
    if args.output_dir.is_dir() and any(args.output_dir.iterdir()):
        raise ValueError(
            f"--output-dir {args.output_dir} is not empty: a stage writes a directory of its own "
            "(an index left there would be merged into the new one)"
        )
    preflight(config)
    candidates = [args.parent_run_file] if args.parent_run_file else [d / PARENT_RUN_FILE for d in inputs.values()]
    found = next((p for p in candidates if p.is_file()), None)
    if found:
        parent = ParentRun.read(found)
    else:  # the first stage of a pipeline execution opens the parent run for the others
        parent = start_parent(config, str(inputs.get("dataset", "")))
        if args.parent_run_file:
            parent.write(args.parent_run_file)
    with Backends(config) as backends:
        run_stage(stage(args.stage_id), config, inputs, args.output_dir, StageContext(parent, backends))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from processing.pipelines.parameters import portable_overrides
    from processing.pipelines.start import clients, current_git_sha, promoted_provenance, start_execution

    promoted, provenance = {}, None
    if args.promoted:
        try:
            record = json.loads(args.promoted.read_text(encoding="utf-8"))
            promoted, provenance = portable_overrides(record), promoted_provenance(record)
        except (OSError, json.JSONDecodeError, ValueError) as error:
            raise ValueError(f"--promoted {args.promoted}: {error}") from error
    started = start_execution(
        *clients(args.region),
        environment=args.env,
        variant=args.variant,
        overrides={**promoted, **parse_overrides(args.overrides)},
        git_sha=args.git_sha or current_git_sha(),
        promoted=provenance,
    )
    print(f"pipeline {started.pipeline}: image {started.image_uri}, commit {started.git_sha}")
    print(f"MLflow experiment: {started.experiment}")
    print(started.arn)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from processing.compare import chart, latest_runs, table

    if args.last < 1:
        raise ValueError("--last must be at least 1")
    runs = latest_runs(args.experiment, args.last)
    if not runs:
        print(f"no pipeline runs in experiment {args.experiment!r}", file=sys.stderr)
        return 1
    print(table(runs))
    print(f"\nchart: {chart(runs, args.chart)}")
    return 0


class _WithoutTraceback(logging.Filter):
    """opensearch-py logs each failed request with its traceback and then raises; the pipeline reports the raised
    error once, as one line (a vector store outage: processing/stages/retrieve_errors.py), so the log keeps only
    the request line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


_WITHOUT_TRACEBACK = _WithoutTraceback()


def finish_trace_export() -> None:
    """Write out the agent's traces and stop MLflow's export threads before the process exits, so MLflow's exit
    hook has nothing left to flush (it would announce the flush on the console after the run's summary). Only
    the process entry point calls it: stopped threads lose the traces of any later run in the same process."""
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.flush_trace_async_logging(terminate=True)


def main(argv: Sequence[str] | None = None) -> int:
    from processing.backends.errors import CloudBackendError
    from processing.config import ConfigError
    from processing.datasets import DatasetError
    from processing.generators.errors import GeneratorError

    args = _parser().parse_args(argv)
    log_to_console()
    logging.getLogger("opensearch").addFilter(_WITHOUT_TRACEBACK)  # the same filter once, however often called
    handlers = {"run": _run, "stage": _stage, "compare": _compare, "pipeline": _pipeline}
    try:
        try:
            with stop_on_signals():
                return handlers[args.command](args)
        except Exception as error:
            stop = stop_behind(error)
            if stop is error:
                raise
            raise stop from error  # a signal that surfaced wrapped is still a signal
    except (ConfigError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CloudBackendError, GeneratorError, RuntimeError, OSError) as error:  # a service, its setup or a file
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # the runs are already marked KILLED and the local LLM server stopped
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        print("interrupted" if signum == signal.SIGINT else f"terminated ({name})", file=sys.stderr)
        return 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
