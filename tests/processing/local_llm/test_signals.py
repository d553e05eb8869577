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


def start_run(tmp_path: Path, mode: str, *, as_pid_1: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m processing run` with its own MLflow store and TMPDIR (where the server's log goes)."""
    (tmp_path / "tmp").mkdir()
    stderr = tmp_path / "stderr.txt"
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "TMPDIR": str(tmp_path / "tmp")}
    command = [sys.executable, "-m", "processing", "run", "--mode", mode, "--work-dir", str(tmp_path / "work")]
    command += ["--dataset", str(write_sample(tmp_path / "data", QUESTIONS)), "--set", "experiment_name=signals"]
    wrapper = ["unshare", "--pid", "--fork", "--kill-child"] if as_pid_1 else []
    with stderr.open("w") as err:
        process = subprocess.Popen([*wrapper, *command], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return process, stderr


def wait_for_server(run: subprocess.Popen[bytes]) -> set[int]:
    """The run's processes once the retrieval stage's llama-server exists (its start is the event)."""
    wait_for(lambda: run.poll() is not None or bool(descendants(run.pid) & llama_servers()), START_BOUND_S)
    below = descendants(run.pid)
    assert below & llama_servers(), f"no llama-server below the run (exit status {run.poll()})"
    return below


def our_lines(stderr: Path) -> list[str]:
    """stderr without MLflow's own INFO lines (its trace queue may log a flush at exit)."""
    return [line for line in stderr.read_text().splitlines() if " INFO mlflow." not in line]


def assert_stopped_cleanly(tmp_path: Path, run: subprocess.Popen[bytes], below: set[int], stderr: Path) -> None:
    status = run.wait(STOP_BOUND_S)
    signum, last = (signal.SIGINT, "interrupted") if status == 130 else (signal.SIGTERM, "terminated (SIGTERM)")
    assert status == 128 + signum, stderr.read_text()
    assert our_lines(stderr)[-1] == last, stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    assert wait_until_gone(below & llama_servers()) == set()
    assert wait_for(lambda: not alive(below), 30.0), f"processes {alive(below)} outlived the run"
    assert list((tmp_path / "tmp").glob("llama-server-*")) == []  # the server's temp log
    runs = {r.info.run_name: r for r in runs_of(f"sqlite:///{tmp_path / 'mlflow.db'}", "signals")}
    (parent,) = [r for name, r in runs.items() if name.startswith("RecursiveChunker-")]
    reason = f"Interrupted: stopped by {signum.name}"
    for stopped in (parent, runs["RAGRetrieval"]):
        assert stopped.info.status == "KILLED", stopped.info.run_name
        assert stopped.data.tags["ragops.error"] == reason, stopped.info.run_name
    assert {r.info.status for r in runs.values()} <= {"FINISHED", "KILLED"}  # nothing left RUNNING


def signal_a_run(tmp_path: Path, mode: str, signum: signal.Signals, *, as_pid_1: bool = False) -> None:
    """Start a run, send `signum` once its retrieval stage has started, and check that it stopped cleanly."""
    run, stderr = start_run(tmp_path, mode, as_pid_1=as_pid_1)
    try:
        below = wait_for_server(run)
        # as PID 1 of its namespace, Python is the child of the `unshare` process the test started
        target = next(pid for pid in below if f"PPid:\t{run.pid}\n" in Path(f"/proc/{pid}/status").read_text())
        os.kill(target if as_pid_1 else run.pid, signum)
        assert_stopped_cleanly(tmp_path, run, below, stderr)
    finally:
        run.kill()


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_sigterm_during_a_run_kills_its_runs_and_leaves_no_process_or_temp_file(tmp_path: Path, mode: str) -> None:
    signal_a_run(tmp_path, mode, signal.SIGTERM)


@pytest.mark.skipif(not _can_be_pid_1(), reason="needs unshare --pid (a PID namespace) to run Python as PID 1")
def test_sigterm_reaches_a_run_that_is_pid_1(tmp_path: Path) -> None:
    """In a PID namespace, as in a container without an init, Python is PID 1: the kernel delivers it only the
    signals it installed a handler for, so without one a stopped job would wait for SIGKILL."""
    signal_a_run(tmp_path, "single", signal.SIGTERM, as_pid_1=True)


def test_ctrl_c_during_a_run_stops_the_server_and_fails_the_run(tmp_path: Path) -> None:
    signal_a_run(tmp_path, "single", signal.SIGINT)
