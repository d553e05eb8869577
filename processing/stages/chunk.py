"""DataChunking: split every context and document; ids come from the content, so duplicates collapse."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from statistics import fmean, median

from processing.chunking import chunk_id, make_splitter
from processing.config import RunConfig
from processing.context import StageContext
from processing.interfaces import Chunk
from processing.stages.files import (
    CHUNKS_FILE,
    DOCUMENTS_FILE,
    GOLD_FILE,
    read_jsonl,
    read_records,
    write_json_atomic,
    write_jsonl,
)


def chunk_corpus(
    config: RunConfig, sources: list[tuple[str, str, str]]
) -> tuple[dict[str, Chunk], dict[str, list[str]], int]:
    """(unique chunks by id, chunk ids per source id, chunks produced before deduplication).

    `sources` holds (source id, position label, text) per context or document.
    """
    split = make_splitter(config.chunking_strategy, config.chunk_size, config.chunk_overlap)
    unique: dict[str, Chunk] = {}
    by_source: dict[str, list[str]] = {}
    produced = 0
    for source_id, position, text in sources:
        for piece in split(text):
            produced += 1
            cid = chunk_id(piece)
            unique.setdefault(cid, Chunk(cid, piece, source_id, {"position": position}))
            ids = by_source.setdefault(source_id, [])
            if cid not in ids:
                ids.append(cid)
    return unique, by_source, produced


CHUNK_STATISTICS_FILE = "chunk_statistics.json"


def chunk_statistics(unique: Mapping[str, Chunk], by_source: Mapping[str, list[str]], produced: int) -> dict:
    """The DataChunking artifact: chunk lengths, chunks per source, and how many duplicates collapsed."""
    lengths = sorted(len(c.text) for c in unique.values())
    per_source = [len(ids) for ids in by_source.values()]
    return {
        "chunks_produced": produced,
        "unique_chunks": len(unique),
        "duplicates_collapsed": produced - len(unique),
        "length_chars": {"min": lengths[0], "median": median(lengths), "max": lengths[-1], "mean": fmean(lengths)},
        "chunks_per_source": {"min": min(per_source), "median": median(per_source), "max": max(per_source)},
        "sources": len(by_source),
    }


def run(config: RunConfig, inputs: Mapping[str, Path], output_dir: Path, context: StageContext) -> None:
    import mlflow

    prepared = inputs["prepared"]
    records = read_records(prepared)
    sources = [(r.record_id, f"context-{i}", text) for r in records for i, text in enumerate(r.contexts)]
    sources += [(d["doc_id"], "document", d["text"]) for d in read_jsonl(prepared / DOCUMENTS_FILE)]
    unique, by_source, produced = chunk_corpus(config, sources)
    write_jsonl(output_dir / CHUNKS_FILE, ({**vars(c), "metadata": dict(c.metadata)} for c in unique.values()))
    write_json_atomic(output_dir / GOLD_FILE, {r.record_id: by_source[r.record_id] for r in records})
    mlflow.log_params(
        {
            "chunking_strategy_type": config.chunking_strategy,
            "chunking_strategy_chunk_size": config.chunk_size,
            "chunking_strategy_chunk_overlap": config.chunk_overlap,
        }
    )
    mlflow.log_metrics(
        {
            "total_source_contexts_entries": len(sources),
            "total_contexts_chunked": produced,
            "total_unique_chunks_final": len(unique),
            "avg_chunk_length": fmean(len(c.text) for c in unique.values()),
        }
    )
    mlflow.log_dict(chunk_statistics(unique, by_source, produced), CHUNK_STATISTICS_FILE)


def read_chunks(directory: Path) -> list[Chunk]:
    return [Chunk(r["chunk_id"], r["text"], r["source_id"], r["metadata"]) for r in read_jsonl(directory / CHUNKS_FILE)]
