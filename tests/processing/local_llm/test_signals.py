"""A real signal to a real run: SIGTERM (a stopped or time-limited SageMaker job) and Ctrl-C end the run and the
running stage KILLED with the signal as their error tag, stop every child process (the llama-server, the stage
process of `--mode multi`) and remove the server's temp log, in both modes and with Python as PID 1.

The tests wait on events (the server process appearing, the run exiting), each with a bound a loaded 2-core
machine keeps: start-up embeds the corpus and loads the model while other runs may share the cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processing.helpers import REPO_ROOT, runs_of, write_sample
from tests.processing.local_llm.processes import alive, descendants, llama_servers, wait_for, wait_until_gone

START_BOUND_S = 600.0  # until the retrieval stage has started its server
STOP_BOUND_S = 240.0  # from the signal to the run's exit: the question in flight finishes, runs are closed
QUESTIONS = 8


def _can_be_pid_1() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)  # noqa: S607
    return probe.returncode == 0


def start_run(
    tmp_path: Path, mode: str, generator: str, *, as_pid_1: bool = False
) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m processing run` with its own MLflow store and TMPDIR (where the server's log goes)."""
    (tmp_path / "tmp").mkdir()
    stderr = tmp_path / "stderr.txt"
    env = os.environ | {"MLFLOW_TRACKING_URI": store(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    command = [sys.executable, "-m", "processing", "run", "--mode", mode, "--work-dir", str(tmp_path / "work")]
    command += ["--dataset", str(write_sample(tmp_path / "data", QUESTIONS)), "--set", "experiment_name=signals"]
    command += ["--set", f"generator={generator}"]
    wrapper = ["unshare", "--pid", "--fork", "--kill-child"] if as_pid_1 else []
    with stderr.open("w") as err:
        process = subprocess.Popen([*wrapper, *command], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return process, stderr


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def ingesting(tmp_path: Path) -> bool:
    """The DataIngestion run is RUNNING (read once the prepare stage has made the store and its output)."""
    if not (tmp_path / "work" / "chunks").is_dir():
        return False
    return any(r.info.run_name == "DataIngestion" for r in runs_of(store(tmp_path), "signals", "RUNNING"))


def wait_for_stage(tmp_path: Path, run: subprocess.Popen[bytes], generator: str) -> set[int]:
    """The run's processes once a stage is under way: the retrieval stage's llama-server exists (local), or the
    ingest stage's run is RUNNING (extractive, which starts no server)."""
    if generator == "local":
        started = lambda: bool(descendants(run.pid) & llama_servers())  # noqa: E731
    else:
        started = lambda: ingesting(tmp_path)  # noqa: E731
    assert wait_for(lambda: run.poll() is not None or started(), START_BOUND_S)
    assert run.poll() is None, f"the run ended (status {run.poll()}) before its stage started"
    return descendants(run.pid)


def our_lines(stderr: Path) -> list[str]:
    """stderr without MLflow's own INFO lines (its trace queue may log a flush at exit)."""
    return [line for line in stderr.read_text().splitlines() if " INFO mlflow." not in line]


def assert_stopped_cleanly(tmp_path: Path, run: subprocess.Popen[bytes], below: set[int], stderr: Path) -> str:
    """Checks the run's end; returns the name of the stage run the signal stopped."""
    status = run.wait(STOP_BOUND_S)
    signum, last = (signal.SIGINT, "interrupted") if status == 130 else (signal.SIGTERM, "terminated (SIGTERM)")
    assert status == 128 + signum, stderr.read_text()
    assert our_lines(stderr)[-1] == last, stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    assert wait_until_gone(below & llama_servers()) == set()
    assert wait_for(lambda: not alive(below), 30.0), f"processes {alive(below)} outlived the run"
    assert list((tmp_path / "tmp").glob("llama-server-*")) == []  # the server's temp log
    runs = runs_of(store(tmp_path), "signals")
    (parent,) = [r for r in runs if r.info.run_name.startswith("RecursiveChunker-")]
    (stage,) = [r for r in runs if r.info.status == "KILLED" and r is not parent]  # the one running at the signal
    reason = f"Interrupted: stopped by {signum.name}"
    for stopped in (parent, stage):
        assert stopped.info.status == "KILLED", stopped.info.run_name
        assert stopped.data.tags["ragops.error"] == reason, stopped.info.run_name
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}  # nothing left RUNNING
    return stage.info.run_name


def signal_a_run(tmp_path: Path, mode: str, generator: str, signum: signal.Signals, *, as_pid_1: bool = False) -> str:
    """Start a run, send `signum` once a stage is under way, check that it stopped cleanly; returns the stage
    run the signal stopped."""
    run, stderr = start_run(tmp_path, mode, generator, as_pid_1=as_pid_1)
    try:
        below = wait_for_stage(tmp_path, run, generator)
        target = run.pid
        if as_pid_1:  # PID 1 of its namespace, Python is the child of the `unshare` process the test started
            target = next(pid for pid in below if f"PPid:\t{run.pid}\n" in Path(f"/proc/{pid}/status").read_text())
        os.kill(target, signum)
        return assert_stopped_cleanly(tmp_path, run, below, stderr)
    finally:
        run.kill()


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_sigterm_while_the_local_server_answers_kills_the_runs_and_leaves_no_process_or_temp_file(
    tmp_path: Path, mode: str
) -> None:
    assert signal_a_run(tmp_path, mode, "local", signal.SIGTERM) == "RAGRetrieval"


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_sigterm_during_ingest_kills_the_runs_and_the_stage_process(tmp_path: Path, mode: str) -> None:
    assert signal_a_run(tmp_path, mode, "extractive", signal.SIGTERM) == "DataIngestion"


@pytest.mark.skipif(not _can_be_pid_1(), reason="needs unshare --pid (a PID namespace) to run Python as PID 1")
def test_sigterm_reaches_a_run_that_is_pid_1(tmp_path: Path) -> None:
    """In a PID namespace, as in a container without an init, Python is PID 1: the kernel delivers it only the
    signals it installed a handler for, so without one a stopped job would wait for SIGKILL."""
    assert signal_a_run(tmp_path, "single", "extractive", signal.SIGTERM, as_pid_1=True) == "DataIngestion"


def test_ctrl_c_during_a_run_stops_the_server_and_fails_the_run(tmp_path: Path) -> None:
    assert signal_a_run(tmp_path, "single", "local", signal.SIGINT) == "RAGRetrieval"
