"""What a person sees at the end of `make run`: the run on the sample data as `make run` starts it, in its own
process, prints its stages, its progress and its summary, and no library warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.processing.helpers import REPO_ROOT

# the `--set` flags `make run` passes, read from the Makefile so the test follows it
MAKE_RUN_FLAGS = re.search(r"^SAMPLE_CHUNKING := (.*)$", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
LIBRARY_NOISE = re.compile(r"\w+Warning: |warnings\.warn|Traceback|Flushing the async trace|Mean of empty slice")
EXPECTED_LINES = (
    "stage 1/6 DataPreparation",
    "stage 6/6 RAGEvaluation",
    "  33/33 questions answered",
    "  judge      not judged: judge=none",
    "quality gate: nothing gated",
    "  not checked: judge_coverage: not judged: judge=none",
    "look at: ",
)


def test_a_sample_run_prints_its_summary_and_no_library_warning(tmp_path: Path) -> None:
    assert MAKE_RUN_FLAGS is not None
    flags = MAKE_RUN_FLAGS.group(1).split()
    done = subprocess.run(
        [sys.executable, "-m", "processing", "run", *flags, "--work-dir", str(tmp_path / "work")],
        cwd=REPO_ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        check=False,
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert LIBRARY_NOISE.findall(console) == [], console
    lines = console.splitlines()
    for expected in EXPECTED_LINES:
        assert any(line.startswith(expected) for line in lines), (expected, console)
    summary = done.stdout.splitlines()  # progress and log lines go to stderr, the summary to stdout
    assert summary[0].startswith("run "), console
    assert len(summary) <= 25, console  # short: the rest is in report.json and MLflow
