"""DataChunking: split every context and document; ids come from the content, so duplicates collapse.

The unique chunks are written as shard files (`shards/part-<n>.jsonl`, at most `CHUNKS_PER_SHARD` each): the
SageMaker ingest step hands whole files to its instances (`ShardedByS3Key`), so many files spread a large
corpus evenly over any instance count. `manifest.json` records the unique chunk count publish checks against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from statistics import fmean, median

from processing.chunking import chunk_id, make_splitter
from processing.config import RunConfig
from processing.context import StageContext
from processing.interfaces import Chunk
from processing.stages.files import (
    CHUNK_MANIFEST_FILE,
    CHUNK_SHARDS_DIR,
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
    write_chunk_shards(list(unique.values()), output_dir, instances=config.ingest_instances)
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


CHUNKS_PER_SHARD = 10_000  # 1M chunks: 100 files, about 12 MB each


def shard_count(chunks: int, per_shard: int, instances: int) -> int:
    """Files for `chunks`: at most `per_shard` chunks each, and at least one per ingest instance (while there are
    chunks to fill them). SageMaker's ShardedByS3Key gives each instance about 1/n of the S3 objects, and with
    fewer objects than instances "some nodes won't get any data" (botocore's sagemaker model, S3DataSource
    S3DataDistributionType); the ingest stage still exits cleanly on an instance that got none."""
    return max(-(-chunks // per_shard), min(instances, chunks))


def write_chunk_shards(
    chunks: list[Chunk], output_dir: Path, per_shard: int = CHUNKS_PER_SHARD, instances: int = 1
) -> list[str]:
    """Write the chunks as near-equal shard files (`shard_count`) and the manifest naming them; returns the
    files' names."""
    shards = output_dir / CHUNK_SHARDS_DIR
    shards.mkdir(parents=True, exist_ok=True)
    count = shard_count(len(chunks), per_shard, instances)
    names = []
    for number in range(count):
        names.append(f"part-{number:05d}.jsonl")
        part = chunks[number * len(chunks) // count : (number + 1) * len(chunks) // count]
        write_jsonl(shards / names[-1], ({**vars(c), "metadata": dict(c.metadata)} for c in part))
    write_json_atomic(output_dir / CHUNK_MANIFEST_FILE, {"unique_chunks": len(chunks), "shard_files": names})
    return names


def read_chunks(directory: Path) -> list[Chunk]:
    """Every chunk in the shard files present under `directory` (on a sharded instance: its share), in order."""
    shards = directory / CHUNK_SHARDS_DIR
    if not shards.is_dir():
        raise ValueError(f"{shards}: no chunk shards (the chunk stage writes them)")
    return [
        Chunk(r["chunk_id"], r["text"], r["source_id"], r["metadata"])
        for path in sorted(shards.glob("part-*.jsonl"))
        for r in read_jsonl(path)
    ]


def expected_chunks(directory: Path) -> int:
    """The unique chunk count the chunk stage produced, from its manifest."""
    path = directory / CHUNK_MANIFEST_FILE
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["unique_chunks"])
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: no unique chunk count ({error})") from error
