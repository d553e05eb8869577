"""DataPreparation: validate the dataset, normalise it to JSONL, and describe it (sizes, decisions, PII)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from statistics import fmean

from processing.config import RunConfig
from processing.context import StageContext
from processing.datasets import DECISIONS, Dataset, load_dataset
from processing.pii import count_pii
from processing.stages.files import DOCUMENTS_FILE, QA_FILE, write_jsonl

HISTOGRAM_FILE = "context_length_histogram.png"


def describe(dataset: Dataset) -> dict[str, float]:
    """The DataPreparation metrics of a validated dataset."""
    lengths = [len(c) for r in dataset.records for c in r.contexts]
    decisions = Counter(r.final_decision for r in dataset.records)
    texts = [t for r in dataset.records for t in (r.question, r.long_answer, *r.contexts)]
    pii = count_pii([*texts, *(d.text for d in dataset.documents)])
    return {
        "total_qa_pairs": len(dataset.records),
        "unique_questions": len({" ".join(r.question.split()).casefold() for r in dataset.records}),
        "total_contexts": len(lengths),
        "avg_context_length": fmean(lengths),
        "document_count": len(dataset.documents),
        **{f"decision_{d}_count": decisions[d] for d in DECISIONS},
        **{f"pii_{name}_count": count for name, count in pii.items()},
        "pii_total_count": sum(pii.values()),
    }


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


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow
    from matplotlib import pyplot as plt

    source = inputs["dataset"]
    dataset = load_dataset(source)
    write_jsonl(output_dir / QA_FILE, (r.to_json() for r in dataset.records))
    write_jsonl(output_dir / DOCUMENTS_FILE, (asdict(d) for d in dataset.documents))
    mlflow.log_params({"dataset": source.name, "dataset_format": "pubmedqa"})
    mlflow.log_metrics(describe(dataset))
    figure = _histogram(dataset, output_dir / HISTOGRAM_FILE)
    mlflow.log_figure(figure, HISTOGRAM_FILE)
    plt.close(figure)
