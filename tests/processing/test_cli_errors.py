"""Bad flags and bad datasets: exit status, one line naming the flag or file, no traceback, no RUNNING run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from processing.cli import main
from tests.processing.helpers import runs_of, write_sample

EXPERIMENT = "cli-errors"  # tests that expect runs use an experiment of their own


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, experiment: str = EXPERIMENT) -> tuple[int, str]:
    status = main([*argv, "--set", f"experiment_name={experiment}", "--set", "generator=extractive"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    directory = tmp_path / "prepared"
    directory.mkdir()
    return directory


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            ["--input", "prepped={dir}"],
            "--input 'prepped={dir}': stage chunk has no input 'prepped' (its inputs: prepared)",
        ),
        (
            ["--input", "prepared=/nonexistent"],
            "--input 'prepared=/nonexistent': /nonexistent is not an existing directory",
        ),
        (["--input", "prepared"], "--input 'prepared': expected NAME=DIR"),
        ([], "stage chunk needs --input prepared=DIR"),
    ],
)
def test_stage_input_errors_name_the_flag_and_leave_no_run(
    inputs, message, prepared, tmp_path, capsys, mlflow_store
) -> None:
    argv = [part.format(dir=prepared) for part in inputs]
    status, err = run_cli(capsys, "stage", "chunk", *argv, "--output-dir", str(tmp_path / "out"))
    assert status == 2
    assert err.strip() == "error: " + message.format(dir=prepared)
    assert runs_of(mlflow_store, EXPERIMENT) == []


def test_stage_refuses_a_used_output_dir(prepared, tmp_path, capsys, mlflow_store) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "left-over").write_text("x")
    status, err = run_cli(capsys, "stage", "chunk", "--input", f"prepared={prepared}", "--output-dir", str(out))
    assert status == 2
    assert f"--output-dir {out} is not empty" in err
    assert runs_of(mlflow_store, EXPERIMENT) == []


def test_a_malformed_dataset_is_reported_before_any_run_exists(tmp_path, capsys, mlflow_store) -> None:
    dataset = tmp_path / "bad.json"
    dataset.write_text(json.dumps({"r1": {"QUESTION": "Why?", "CONTEXTS": [], "LONG_ANSWER": "x"}}))
    work = ["--work-dir", str(tmp_path / "work")]
    status, err = run_cli(capsys, "run", "--dataset", str(dataset), *work, experiment="cli-bad-dataset")
    assert status == 2
    assert f"{dataset}: record 'r1': CONTEXTS must be a non-empty list" in err
    assert runs_of(mlflow_store, "cli-bad-dataset") == []


@pytest.mark.parametrize(
    ("flag", "message"),
    [("top_k=0", "top_k: Input should be greater than or equal to 1"), ("pii_action=drop", "pii_action:")],
)
def test_a_bad_flag_names_the_field_and_leaves_no_run(flag, message, tmp_path, capsys, mlflow_store) -> None:
    dataset = write_sample(tmp_path / "data", 2)
    status, err = run_cli(capsys, "run", "--dataset", str(dataset), "--set", flag)
    assert status == 2
    assert message in err
    assert runs_of(mlflow_store, EXPERIMENT) == []
