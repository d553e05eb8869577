"""DataPreparation: validate the dataset, screen it for personal data, normalise it to JSONL, and describe it
(sizes, decisions, PII), with the dataset logged as the run's input under a content digest."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING

from processing import pii
from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import DECISIONS, Dataset, DatasetError, Document, QaRecord, load_dataset, question_key
from processing.stages.files import DOCUMENTS_FILE, QA_FILE, write_jsonl

if TYPE_CHECKING:
    from mlflow.data.dataset_source import DatasetSource

HISTOGRAM_FILE = "context_length_histogram.png"
MAX_NAMED_SOURCES = 10
MAX_PARAM_CHARS = 6000  # MLflow keeps param values up to 6,000 characters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PiiScreen:
    counts: dict[str, int]  # every type, zero included
    sources: tuple[str, ...]  # record or document ids holding any finding
    dataset: Dataset  # redacted when pii_action=redact, else the input

    @property
    def detected(self) -> str:
        return ",".join(name for name, count in self.counts.items() if count) or "none"


def _redacted_record(record: QaRecord) -> tuple[QaRecord, Counter[str]]:
    found: Counter[str] = Counter()

    def clean(text: str) -> str:
        findings = pii.find(text)
        found.update(f.entity_type for f in findings)
        return pii.redact(text, findings)

    redacted = replace(
        record,
        question=clean(record.question),
        long_answer=clean(record.long_answer),
        contexts=tuple(clean(c) for c in record.contexts),
    )
    return redacted, found


def screen(dataset: Dataset, action: str) -> PiiScreen:
    """Count personal data per type; `redact` replaces each finding with `<TYPE>`, `fail` refuses the dataset."""
    counts: Counter[str] = Counter()
    sources: list[str] = []
    records: list[QaRecord] = []
    for record in dataset.records:
        redacted, found = _redacted_record(record)
        records.append(redacted)
        counts.update(found)
        sources += [record.record_id] if found else []
    documents: list[Document] = []
    for document in dataset.documents:
        findings = pii.find(document.text)
        counts.update(f.entity_type for f in findings)
        sources += [document.doc_id] if findings else []
        documents.append(replace(document, text=pii.redact(document.text, findings)))
    result = PiiScreen(
        {name: counts[name] for name in pii.PII_TYPES},
        tuple(sources),
        replace(dataset, records=tuple(records), documents=tuple(documents)) if action == "redact" else dataset,
    )
    if action == "fail" and sources:
        found = ", ".join(f"{count} {name}" for name, count in result.counts.items() if count)
        named = ", ".join(repr(s) for s in sources[:MAX_NAMED_SOURCES])
        more = f" and {len(sources) - MAX_NAMED_SOURCES} more" if len(sources) > MAX_NAMED_SOURCES else ""
        raise DatasetError(f"pii_action=fail: the dataset holds personal data ({found}) in {named}{more}")
    return result


def describe(dataset: Dataset, pii_counts: Mapping[str, int]) -> dict[str, float]:
    """The DataPreparation metrics of a validated dataset."""
    lengths = [len(c) for r in dataset.records for c in r.contexts]
    decisions = Counter(r.final_decision for r in dataset.records)
    return {
        "total_qa_pairs": len(dataset.records),
        "unique_questions": len({question_key(r.question) for r in dataset.records}),
        "total_contexts": len(lengths),
        "avg_context_length": fmean(lengths),
        "document_count": len(dataset.documents),
        "empty_document_count": len(dataset.empty_documents),
        **{f"decision_{d}_count": decisions[d] for d in DECISIONS},
        **{f"pii_{name.lower()}_count": count for name, count in pii_counts.items()},
        "pii_total_count": sum(pii_counts.values()),
    }


def content_digest(output_dir: Path) -> str:
    """sha256 over the normalised files the later stages read, so equal content gives an equal digest."""
    digest = hashlib.sha256()
    for name in (QA_FILE, DOCUMENTS_FILE):
        digest.update((output_dir / name).read_bytes())
    return digest.hexdigest()


def _histogram(dataset: Dataset, path: Path) -> object:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    axes.hist([len(c) for r in dataset.records for c in r.contexts], bins=30, color="#3b6ea8")
    axes.set(title="Context length", xlabel="characters", ylabel="contexts")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return figure


def local_source(path: Path) -> DatasetSource:
    """The dataset's MLflow source, built rather than resolved from a path string: MLflow registers its local
    file source under two schemes, so resolving a path matches both and warns that it is ambiguous
    (mlflow/data/dataset_source_registry.py). `_get_source_type` is the DatasetSource interface's own."""
    from mlflow.data.dataset_source_registry import get_registered_sources

    local = next(s for s in get_registered_sources() if s._get_source_type() == "local")
    return local(path.resolve().as_uri())


def _log_input(dataset: Dataset, source: Path, digest: str, context: StageContext) -> None:
    """The dataset as an MLflow input of this run and of the parent, named by its content digest."""
    import mlflow
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag

    from processing.tracking import configure

    frame = pd.DataFrame(
        {
            "question": [r.question for r in dataset.records],
            "long_answer": [r.long_answer for r in dataset.records],
            "final_decision": [r.final_decision for r in dataset.records],
        },
        index=[r.record_id for r in dataset.records],
    )
    logged = mlflow.data.from_pandas(frame, source=local_source(source), name=source.name, digest=digest[:32])
    mlflow.log_input(logged, context="dataset")
    configure().log_inputs(
        context.parent.run_id, [DatasetInput(logged._to_mlflow_entity(), [InputTag("mlflow.data.context", "dataset")])]
    )


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow
    from matplotlib import pyplot as plt

    source = inputs["dataset"]
    checked = screen(load_dataset(source), config.pii_action)
    dataset = checked.dataset
    if dataset.empty_documents:
        logger.warning(
            "DataPreparation: dropped %d empty document(s): %s",
            len(dataset.empty_documents),
            ", ".join(dataset.empty_documents[:MAX_NAMED_SOURCES]),
        )
    write_jsonl(output_dir / QA_FILE, (r.to_json() for r in dataset.records))
    write_jsonl(output_dir / DOCUMENTS_FILE, (asdict(d) for d in dataset.documents))
    digest = content_digest(output_dir)
    mlflow.log_params(
        {
            "dataset": source.name,
            "dataset_format": "pubmedqa",
            "dataset_sha256": digest,
            "pii_action": config.pii_action,
            "pii_types_detected": checked.detected,
            "pii_types_not_detected": pii.NOT_DETECTED,
            "empty_documents_dropped": ", ".join(dataset.empty_documents)[:MAX_PARAM_CHARS] or "none",
        }
    )
    mlflow.log_metrics(describe(dataset, checked.counts))
    _log_input(dataset, source, digest, context)
    figure = _histogram(dataset, output_dir / HISTOGRAM_FILE)
    mlflow.log_figure(figure, HISTOGRAM_FILE)
    plt.close(figure)
