"""Reading and writing the JSON/JSONL files stages pass to each other."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from processing.datasets import QaRecord
from processing.stages.registry import SHARDS_DIR

QA_FILE = "qa.jsonl"
DOCUMENTS_FILE = "documents.jsonl"
CHUNK_SHARDS_DIR = SHARDS_DIR  # part-<n>.jsonl: the chunks, in files the ingest step shards by S3 key
CHUNK_MANIFEST_FILE = "manifest.json"  # the unique chunk count publish reconciles the index against
GOLD_FILE = "gold.json"
ANSWERS_FILE = "answers.jsonl"
FAILED_QUESTIONS_FILE = "failed_questions.jsonl"  # the questions the retrieval stage could not answer, with why
REPORT_FILE = "report.json"
PER_QUESTION_FILE = "per_question.csv"


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def read_records(prepared: Path) -> list[QaRecord]:
    return [QaRecord.from_json(row) for row in read_jsonl(prepared / QA_FILE)]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file and rename it, so the file is either absent or complete."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
