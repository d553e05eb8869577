"""An embedded HNSW vector index on disk (faiss), with the same HNSW parameters as the OpenSearch k-NN index.

Layout of the store directory:
- `staging/<version>/part-<id>/` holds what one `write` call wrote (`vectors.npy`, `chunks.jsonl`). Each part
  is written into a temporary directory and renamed into place, so writers in several processes never clash
  and `publish` sees whole parts only.
- `versions/<version>/` holds a published version's `index.faiss`, `chunks.jsonl` and `build.json` (model and
  HNSW parameters), built by `publish` from
  every part, in chunk-id order: the same chunks give the same index however many writers wrote them.
- `manifest.json` names the current version. It is replaced atomically after the version is complete, so a
  reader in this or another process sees either the previous version or the new one, never a partial write.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from processing.interfaces import Chunk, CountMismatchError, Hit

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
VERSION_NAME = re.compile(r"^[a-z0-9]{1,64}$")
_VECTORS, _CHUNKS, _INDEX, _BUILD = "vectors.npy", "chunks.jsonl", "index.faiss", "build.json"


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


def _write_chunks(path: Path, chunks: Sequence[Chunk]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for chunk in chunks:
            out.write(json.dumps({**asdict(chunk), "metadata": dict(chunk.metadata)}) + "\n")


def _read_chunks(path: Path) -> list[Chunk]:
    with path.open(encoding="utf-8") as lines:
        return [Chunk(r["chunk_id"], r["text"], r["source_id"], r["metadata"]) for r in map(json.loads, lines)]


class FaissStore:
    """`VectorStore` over faiss `IndexHNSWFlat` + ID map, written as parts and published as one version."""

    def __init__(self, directory: Path, *, version: str, params: HnswParams, embedding_model: str):
        if not VERSION_NAME.match(version):
            raise ValueError(f"index version {version!r} must be 1-64 lowercase letters or digits")
        self.directory = Path(directory)
        self.version = version
        self.params = params
        self.embedding_model = embedding_model
        self._index: faiss.IndexIDMap2 | None = None
        self._chunks: dict[int, Chunk] = {}

    @property
    def _staging(self) -> Path:
        return self.directory / "staging" / self.version

    @property
    def _published(self) -> Path:
        return self.directory / "versions" / self.version

    def write(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Stage one part; the version is searchable after `publish`. Returns the chunks staged."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(chunks) != len(vectors):
            raise ValueError(f"expected {len(chunks)} vectors as a 2-D array, got shape {vectors.shape}")
        if not chunks:
            return 0
        self._staging.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(dir=self._staging, prefix=".part-"))
        try:
            np.save(part / _VECTORS, vectors)
            _write_chunks(part / _CHUNKS, chunks)
            os.rename(part, self._staging / f"part-{uuid.uuid4().hex}")
        except BaseException:
            shutil.rmtree(part, ignore_errors=True)
            raise
        return len(chunks)

    def _staged(self) -> tuple[list[Chunk], np.ndarray]:
        """Every staged chunk once, in chunk-id order, with its vector."""
        rows: dict[str, tuple[Chunk, np.ndarray]] = {}
        parts = sorted(self._staging.glob("part-*")) if self._staging.is_dir() else []
        for part in parts:
            vectors = np.load(part / _VECTORS)
            for chunk, vector in zip(_read_chunks(part / _CHUNKS), vectors, strict=True):
                rows.setdefault(chunk.chunk_id, (chunk, vector))
        ordered = [rows[key] for key in sorted(rows)]
        if not ordered:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [chunk for chunk, _ in ordered], np.vstack([vector for _, vector in ordered])

    def publish(self, expected: int) -> int:
        """Build the version from its parts, check it holds `expected` chunks, then point the manifest at it."""
        chunks, vectors = self._staged()
        if len(chunks) != expected:
            target = f"faiss index {self.directory} version {self.version}"
            raise CountMismatchError(target, expected=expected, indexed=len(chunks))
        if not chunks:
            raise IndexStateError(f"{self.directory}: version {self.version} has no chunks to publish")
        index, by_key = self._build(chunks, vectors)
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "count": len(chunks),
            "dimension": index.d,
            "embedding_model": self.embedding_model,
            "params": asdict(self.params),
        }
        self._published.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=self._published.parent, prefix=f".{self.version}-"))
        try:
            faiss.write_index(index, str(building / _INDEX))
            _write_chunks(building / _CHUNKS, chunks)
            (building / _BUILD).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            shutil.rmtree(self._published, ignore_errors=True)
            os.rename(building, self._published)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        previous = self._current_version()
        _atomic_write(self.directory / MANIFEST, lambda temp: Path(temp).write_text(json.dumps(manifest, indent=2)))
        if previous and previous != self.version:
            shutil.rmtree(self.directory / "versions" / previous, ignore_errors=True)
        shutil.rmtree(self._staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # other versions may still be staging
            self._staging.parent.rmdir()
        self._index, self._chunks = index, by_key
        return len(chunks)

    def _build(self, chunks: list[Chunk], vectors: np.ndarray) -> tuple[faiss.IndexIDMap2, dict[int, Chunk]]:
        by_key: dict[int, Chunk] = {}
        for chunk in chunks:
            known = by_key.setdefault(faiss_id(chunk.chunk_id), chunk)
            if known.chunk_id != chunk.chunk_id:
                raise IndexStateError(f"chunk ids {known.chunk_id} and {chunk.chunk_id} collide in their first 60 bits")
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], self.params.m, self.params.faiss_metric)
        hnsw.hnsw.efConstruction = self.params.ef_construction
        hnsw.hnsw.efSearch = self.params.ef_search
        index = faiss.IndexIDMap2(hnsw)
        index.add_with_ids(vectors, np.fromiter(by_key, dtype=np.int64, count=len(by_key)))
        return index, by_key

    def _current_version(self) -> str | None:
        path = self.directory / MANIFEST
        return json.loads(path.read_text(encoding="utf-8"))["version"] if path.exists() else None

    def _load(self) -> bool:
        """Open the published version (once); False while it is not published."""
        if self._index is not None:
            return True
        if not (self._published / _INDEX).exists():
            return False
        manifest = json.loads((self._published / _BUILD).read_text(encoding="utf-8"))
        built_with = (manifest["embedding_model"], manifest["params"]["m"], manifest["params"]["ef_construction"])
        wanted = (self.embedding_model, self.params.m, self.params.ef_construction)
        if manifest["params"]["space_type"] != self.params.space_type or built_with != wanted:
            raise IndexStateError(
                f"{self.directory}: index was built with model/m/ef_construction/space_type "
                f"{(*built_with, manifest['params']['space_type'])}, not {(*wanted, self.params.space_type)}"
            )
        index = faiss.read_index(str(self._published / _INDEX))
        faiss.downcast_index(index.index).hnsw.efSearch = self.params.ef_search
        chunks = {faiss_id(c.chunk_id): c for c in _read_chunks(self._published / _CHUNKS)}
        if index.ntotal != len(chunks):
            raise IndexStateError(f"{self._published}: index holds {index.ntotal} vectors but {len(chunks)} chunks")
        self._index, self._chunks = index, chunks
        return True

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        if not self._load():
            raise IndexStateError(f"{self.directory}: version {self.version} is not published")
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
        return len(self._chunks) if self._load() else 0

    def stored_vectors(self) -> tuple[list[str], np.ndarray]:
        """(chunk ids, vectors) of the published version in index order, e.g. to compare HNSW with exact search."""
        if not self._load() or self._index is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        keys = faiss.vector_to_array(self._index.id_map)
        vectors = faiss.downcast_index(self._index.index).reconstruct_n(0, self._index.ntotal)
        return [self._chunks[int(key)].chunk_id for key in keys], vectors
