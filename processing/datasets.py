"""Reading and validating PubMedQA-format question sets and folders of plain documents.

A question record is `{QUESTION, CONTEXTS, LONG_ANSWER, final_decision}`, keyed by id in a JSON object or
carrying an `id` field on each JSONL line. Every problem is reported with its file and record, and nothing
is returned unless the whole dataset is valid.

Two records asking the same question (equal after collapsing whitespace and case) are refused, not
de-duplicated: the copies may carry different contexts or gold answers, and which one is right is the
dataset owner's call. A `.txt`/`.md` document with no text is dropped, and its name is returned so that the
count is logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DECISIONS = ("yes", "no", "maybe")
QA_SUFFIXES = (".json", ".jsonl")
DOCUMENT_SUFFIXES = (".txt", ".md")
MAX_REPORTED_PROBLEMS = 20


class DatasetError(ValueError):
    """The dataset cannot be used; the message lists each problem with its file and record."""


@dataclass(frozen=True)
class QaRecord:
    record_id: str
    question: str
    contexts: tuple[str, ...]
    long_answer: str
    final_decision: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QaRecord:
        return cls(**{**data, "contexts": tuple(data["contexts"])})


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


@dataclass(frozen=True)
class Dataset:
    records: tuple[QaRecord, ...]
    documents: tuple[Document, ...]
    empty_documents: tuple[str, ...] = ()  # documents dropped because they hold no text


def question_key(question: str) -> str:
    """What makes two questions the same: their words, ignoring whitespace and case."""
    return " ".join(question.split()).casefold()


def _has_undecodable(value: Any) -> bool:
    """True when a string decoded with surrogateescape held bytes that are not UTF-8."""
    if isinstance(value, str):
        return any("\udc80" <= ch <= "\udcff" for ch in value)
    if isinstance(value, list):
        return any(_has_undecodable(v) for v in value)
    if isinstance(value, dict):
        return any(_has_undecodable(k) or _has_undecodable(v) for k, v in value.items())
    return False


def _nonempty_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _validate(record_id: str, raw: Any) -> tuple[QaRecord | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"expected an object, got {type(raw).__name__}"]
    problems = []
    if _has_undecodable(raw):
        problems.append("contains bytes that are not valid UTF-8")
    if not _nonempty_text(raw.get("QUESTION")):
        problems.append("missing or empty QUESTION")
    contexts = raw.get("CONTEXTS")
    if not isinstance(contexts, list) or not contexts:
        problems.append("CONTEXTS must be a non-empty list")
    elif not all(_nonempty_text(c) for c in contexts):
        problems.append("CONTEXTS entries must be non-empty strings")
    if not _nonempty_text(raw.get("LONG_ANSWER")):
        problems.append("missing or empty LONG_ANSWER")
    if raw.get("final_decision") not in DECISIONS:
        problems.append(f"final_decision must be one of {'/'.join(DECISIONS)}, got {raw.get('final_decision')!r}")
    if problems:
        return None, problems
    record = QaRecord(
        record_id=record_id,
        question=raw["QUESTION"].strip(),
        contexts=tuple(c.strip() for c in contexts),
        long_answer=raw["LONG_ANSWER"].strip(),
        final_decision=raw["final_decision"],
    )
    return record, []


def _raw_records(path: Path, text: str) -> Iterator[tuple[str, str, Any]]:
    """(label for messages, record id, raw value) for each record of a JSON or JSONL file."""
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                yield f"line {number}", "", DatasetError(f"invalid JSON: {error.msg} (column {error.colno})")
                continue
            record_id = str(raw.get("id", "")) if isinstance(raw, dict) else ""
            yield f"line {number} (record {record_id!r})", record_id or f"line-{number}", raw
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        yield f"line {error.lineno}", "", DatasetError(f"invalid JSON: {error.msg} (column {error.colno})")
        return
    if not isinstance(data, dict):
        yield "top level", "", DatasetError("expected an object mapping record id -> record")
        return
    for record_id, raw in data.items():
        yield f"record {record_id!r}", str(record_id), raw


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def load_dataset(path: Path) -> Dataset:
    """Load a .json/.jsonl question file, a .txt/.md document, or a folder of them (recursively)."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    files = [p for p in files if p.suffix in QA_SUFFIXES + DOCUMENT_SUFFIXES]
    if not files:
        raise DatasetError(f"{path}: no {', '.join(QA_SUFFIXES + DOCUMENT_SUFFIXES)} files")
    records: dict[str, QaRecord] = {}
    questions: dict[str, str] = {}  # question_key -> the first record id asking it
    documents: list[Document] = []
    empty: list[str] = []
    problems: list[str] = []
    for file in files:
        label_root = file.relative_to(path) if path.is_dir() else file
        text = _read_text(file)
        if file.suffix in DOCUMENT_SUFFIXES:
            if _has_undecodable(text):
                problems.append(f"{file}: document {str(label_root)!r}: contains bytes that are not valid UTF-8")
            elif text.strip():
                documents.append(Document(doc_id=str(label_root), text=text.strip()))
            else:
                empty.append(str(label_root))
            continue
        for label, record_id, raw in _raw_records(file, text):
            if isinstance(raw, DatasetError):
                problems.append(f"{file}: {label}: {raw}")
                continue
            record, record_problems = _validate(record_id, raw)
            problems.extend(f"{file}: {label}: {p}" for p in record_problems)
            if record and record_id in records:
                problems.append(f"{file}: {label}: duplicate record id")
            elif record and (first := questions.get(question_key(record.question))) is not None:
                problems.append(f"{file}: {label}: duplicate question: record {first!r} asks the same")
            elif record:
                records[record_id] = record
                questions[question_key(record.question)] = record_id
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise DatasetError("invalid dataset:\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else ""))
    if not records:
        raise DatasetError(f"{path}: no question records (QUESTION/CONTEXTS/LONG_ANSWER/final_decision)")
    return Dataset(records=tuple(records.values()), documents=tuple(documents), empty_documents=tuple(empty))
