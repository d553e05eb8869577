import json

import pytest

from processing.cli import main
from processing.datasets import DatasetError, load_dataset
from processing.stages.prepare import describe
from tests.processing.helpers import runs_of, sample_records, write_sample

GOOD = sample_records(2)
FIRST_ID = next(iter(GOOD))


def test_folder_of_questions_and_documents(tmp_path) -> None:
    write_sample(tmp_path, 3)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "runbook.md").write_text("# Runbook\nRoll back first.")
    (tmp_path / "ignored.csv").write_text("a,b")
    dataset = load_dataset(tmp_path)
    assert len(dataset.records) == 3
    assert [d.doc_id for d in dataset.documents] == ["notes/runbook.md"]


def test_jsonl_records(tmp_path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps({"id": k, **v}) for k, v in GOOD.items()) + "\n")
    assert [r.record_id for r in load_dataset(path).records] == list(GOOD)


def _broken(record_change) -> dict:
    records = json.loads(json.dumps(GOOD))
    record_change(records[FIRST_ID])
    return records


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": {"QUESTION": "x",', "qa.json: line 1: invalid JSON"),
        (json.dumps(_broken(lambda r: r.pop("QUESTION"))).encode(), f"record '{FIRST_ID}': missing or empty QUESTION"),
        (
            json.dumps(_broken(lambda r: r.update(CONTEXTS=[]))).encode(),
            f"record '{FIRST_ID}': CONTEXTS must be a non-empty list",
        ),
        (
            json.dumps(_broken(lambda r: r.update(final_decision="perhaps"))).encode(),
            f"record '{FIRST_ID}': final_decision must be one of yes/no/maybe",
        ),
        (
            json.dumps(GOOD).encode().replace(b"Object versioning", b"Object \xff\xfe versioning"),
            f"record '{FIRST_ID}': contains bytes that are not valid UTF-8",
        ),
    ],
    ids=["bad-json", "missing-question", "empty-contexts", "bad-decision", "non-utf8"],
)
def test_errors_name_file_and_record(tmp_path, content, message) -> None:
    (tmp_path / "qa.json").write_bytes(content)
    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path / "qa.json")
    assert message in str(error.value)
    assert str(tmp_path / "qa.json") in str(error.value)


def test_jsonl_error_names_the_line(tmp_path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"id": "r1", **GOOD[FIRST_ID]}) + "\n" + json.dumps({"id": "r2", "QUESTION": "q"}))
    with pytest.raises(DatasetError, match=r"qa.jsonl: line 2 \(record 'r2'\): CONTEXTS must be a non-empty list"):
        load_dataset(path)


def test_cli_reports_a_malformed_dataset_first_and_creates_no_run(tmp_path, mlflow_store, capsys, monkeypatch) -> None:
    """Even on a machine without the local LLM server, the dataset's problem is the one reported."""
    monkeypatch.setenv("RAGOPS_LLAMA_SERVER", str(tmp_path / "no-llama-server"))
    records = _broken(lambda r: r.update(QUESTION=" "))
    (tmp_path / "qa.json").write_text(json.dumps(records))
    code = main(
        [
            "run",
            "--dataset",
            str(tmp_path / "qa.json"),
            "--work-dir",
            str(tmp_path / "w"),
            "--set",
            "experiment_name=bad-data",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"record '{FIRST_ID}': missing or empty QUESTION" in err
    assert "llama-server" not in err
    assert runs_of(mlflow_store, "bad-data") == []
    assert not (tmp_path / "w").exists()


def test_duplicate_questions_are_refused_naming_both_records(tmp_path) -> None:
    records = sample_records(3)
    first, second, _ = records
    records[second]["QUESTION"] = "  " + records[first]["QUESTION"].upper().replace(" ", "\n ") + " "
    (tmp_path / "qa.json").write_text(json.dumps(records))
    with pytest.raises(DatasetError, match=f"record '{second}': duplicate question: record '{first}' asks the same"):
        load_dataset(tmp_path / "qa.json")


def test_empty_documents_are_dropped_and_counted(tmp_path) -> None:
    write_sample(tmp_path, 2)
    (tmp_path / "blank.md").write_text(" \n\t\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "kept.txt").write_text("Roll back first.")
    dataset = load_dataset(tmp_path)
    assert [d.doc_id for d in dataset.documents] == ["kept.txt"]
    assert dataset.empty_documents == ("blank.md", "empty.txt")
    assert describe(dataset, {})["empty_document_count"] == 2
