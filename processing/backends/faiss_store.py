"""An embedded HNSW vector index on disk (faiss), with the same HNSW parameters as the OpenSearch k-NN index.

Layout of the index directory: `manifest.json` names the current generation's `index-<n>.faiss` and
`chunks-<n>.jsonl`. Each save writes a new generation to temporary files, renames them into place, then
atomically replaces the manifest, so a reader (in this or another process) sees either the previous
complete index or the new one, never a partial write.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from processing.interfaces import Chunk, Hit

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class IndexStateError(RuntimeError):
    """The on-disk index is missing, inconsistent, or built with other parameters."""


@dataclass(frozen=True)
class HnswParams:
    m: int
    ef_construction: int
    ef_search: int
    space_type: str  # OpenSearch names: cosinesimil | innerproduct | l2

    @property
    def faiss_metric(self) -> int:
        return faiss.METRIC_L2 if self.space_type == "l2" else faiss.METRIC_INNER_PRODUCT


def faiss_id(chunk_id: str) -> int:
    """A stable non-negative int64 for faiss, taken from the (hex, content-derived) chunk id."""
    return int(chunk_id[:15], 16)


def _atomic_write(path: Path, write: Callable[[str], object]) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class FaissStore:
    """`VectorStore` over faiss `IndexHNSWFlat` + ID map; upsert by chunk id is idempotent."""

    def __init__(self, directory: Path, *, params: HnswParams, embedding_model: str):
        self.directory = Path(directory)
        self.params = params
        self.embedding_model = embedding_model
        self._index: faiss.IndexIDMap2 | None = None
        self._chunks: dict[int, Chunk] = {}
        self._generation = 0
        if (self.directory / MANIFEST).exists():
            self._load()

    def _new_index(self, dimension: int) -> faiss.IndexIDMap2:
        hnsw = faiss.IndexHNSWFlat(dimension, self.params.m, self.params.faiss_metric)
        hnsw.hnsw.efConstruction = self.params.ef_construction
        hnsw.hnsw.efSearch = self.params.ef_search
        return faiss.IndexIDMap2(hnsw)

    def _load(self) -> None:
        manifest = json.loads((self.directory / MANIFEST).read_text(encoding="utf-8"))
        built_with = (manifest["embedding_model"], manifest["params"]["m"], manifest["params"]["ef_construction"])
        wanted = (self.embedding_model, self.params.m, self.params.ef_construction)
        if manifest["params"]["space_type"] != self.params.space_type or built_with != wanted:
            raise IndexStateError(
                f"{self.directory}: index was built with model/m/ef_construction/space_type "
                f"{(*built_with, manifest['params']['space_type'])}, not {(*wanted, self.params.space_type)}"
            )
        index = faiss.read_index(str(self.directory / manifest["index_file"]))
        faiss.downcast_index(index.index).hnsw.efSearch = self.params.ef_search
        chunks = {}
        with (self.directory / manifest["chunks_file"]).open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                chunks[row["faiss_id"]] = Chunk(row["chunk_id"], row["text"], row["source_id"], row["metadata"])
        if index.ntotal != len(chunks) or len(chunks) != manifest["count"]:
            raise IndexStateError(f"{self.directory}: index holds {index.ntotal} vectors but {len(chunks)} chunks")
        self._index, self._chunks, self._generation = index, chunks, manifest["generation"]

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        generation = self._generation + 1
        index_file, chunks_file = f"index-{generation}.faiss", f"chunks-{generation}.jsonl"
        _atomic_write(self.directory / index_file, lambda temp: faiss.write_index(self._index, temp))

        def write_chunks(temp: str) -> None:
            with open(temp, "w", encoding="utf-8") as out:
                for key, chunk in self._chunks.items():
                    out.write(json.dumps({"faiss_id": key, **asdict(chunk), "metadata": dict(chunk.metadata)}) + "\n")

        _atomic_write(self.directory / chunks_file, write_chunks)
        manifest = {
            "format_version": FORMAT_VERSION,
            "generation": generation,
            "index_file": index_file,
            "chunks_file": chunks_file,
            "count": len(self._chunks),
            "dimension": self._index.d,
            "embedding_model": self.embedding_model,
            "params": asdict(self.params),
        }
        _atomic_write(self.directory / MANIFEST, lambda temp: Path(temp).write_text(json.dumps(manifest, indent=2)))
        for old in (f"index-{self._generation}.faiss", f"chunks-{self._generation}.jsonl"):
            (self.directory / old).unlink(missing_ok=True)
        self._generation = generation

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Add chunks not yet indexed; a known id keeps its vector (ids are content hashes, so it is the same).

        Returns the number of distinct chunks in the batch, all of which are in the index afterwards.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(chunks) != len(vectors):
            raise ValueError(f"expected {len(chunks)} vectors as a 2-D array, got shape {vectors.shape}")
        if self._index is None:
            self._index = self._new_index(vectors.shape[1])
        elif vectors.shape[1] != self._index.d:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self._index.d}")
        new_rows: dict[int, int] = {}
        for row, chunk in enumerate(chunks):
            key = faiss_id(chunk.chunk_id)
            known = self._chunks.get(key)
            if known is not None and known.chunk_id != chunk.chunk_id:
                raise IndexStateError(f"chunk ids {known.chunk_id} and {chunk.chunk_id} collide in their first 60 bits")
            if known is None and key not in new_rows:
                new_rows[key] = row
            self._chunks[key] = chunk  # replaces metadata of known ids
        if new_rows:
            rows = list(new_rows.values())
            self._index.add_with_ids(vectors[rows], np.fromiter(new_rows, dtype=np.int64, count=len(rows)))
        self._save()
        return len({c.chunk_id for c in chunks})

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        if self._index is None or self._index.ntotal == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self._index.search(query, min(k, self._index.ntotal))
        hits = []
        for score, key in zip(scores[0], ids[0], strict=True):
            if key < 0:
                continue
            chunk = self._chunks[int(key)]
            # OpenSearch scores l2 as 1 / (1 + squared distance); inner product is cosine on normalised vectors.
            value = 1.0 / (1.0 + float(score)) if self.params.space_type == "l2" else float(score)
            hits.append(Hit(chunk.chunk_id, chunk.text, chunk.source_id, value))
        return hits

    def count(self) -> int:
        return len(self._chunks)

    def stored_vectors(self) -> tuple[list[str], np.ndarray]:
        """(chunk ids, vectors) in index order, e.g. to compare the HNSW graph with exact search."""
        if self._index is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        keys = faiss.vector_to_array(self._index.id_map)
        vectors = faiss.downcast_index(self._index.index).reconstruct_n(0, self._index.ntotal)
        return [self._chunks[int(key)].chunk_id for key in keys], vectors
