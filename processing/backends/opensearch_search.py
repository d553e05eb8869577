"""Queries of a version and their scores: k-NN (with `ef_search` where the engine reads it at query time) and
hybrid BM25 + k-NN through the normalisation search pipeline.

OpenSearch reports k-NN scores on its own scale (cosinesimil (1 + cos) / 2, innerproduct 1 + ip or
1 / (1 - ip) below zero, l2 1 / (1 + d^2)); `similarity` maps them back to the local index's scale (cosine,
inner product, 1 / (1 + d^2)), so `relevance_threshold` means the same with either store. Hybrid scores are the
normalised weighted mean in [0, 1].

Hybrid retrieval uses OpenSearch's `hybrid` query with a search pipeline whose normalization-processor min-max
normalises the BM25 and k-NN scores before a weighted mean: a plain `bool` `should` of `match` + `knn` would add
unbounded BM25 scores to [0, 1] k-NN scores and let BM25 dominate. Both come from the neural-search plugin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from processing.backends.opensearch_index import TEXT_FIELD, VECTOR_FIELD, KnnMethod
from processing.interfaces import Hit


def knn_clause(method: KnnMethod, vector: np.ndarray, k: int) -> dict[str, Any]:
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.shape != (method.dimension,):
        raise ValueError(f"query vector must have {method.dimension} values, got {query.shape[0]}")
    knn: dict[str, Any] = {"vector": query.tolist(), "k": k}
    if method.engine == "lucene":  # faiss reads it from the mapping (opensearch_index)
        knn["method_parameters"] = {"ef_search": method.ef_search}
    return {"knn": {VECTOR_FIELD: knn}}


def knn_body(method: KnnMethod, vector: np.ndarray, k: int) -> dict[str, Any]:
    return {"size": k, "_source": {"excludes": [VECTOR_FIELD]}, "query": knn_clause(method, vector, k)}


def hybrid_body(method: KnnMethod, text: str, vector: np.ndarray, k: int) -> dict[str, Any]:
    queries = [{"match": {TEXT_FIELD: {"query": text}}}, knn_clause(method, vector, k)]
    return {"size": k, "_source": {"excludes": [VECTOR_FIELD]}, "query": {"hybrid": {"queries": queries}}}


def hybrid_pipeline(index: str, bm25_weight: float) -> dict[str, Any]:
    processor = {
        "normalization": {"technique": "min_max"},
        "combination": {
            "technique": "arithmetic_mean",
            "parameters": {"weights": [bm25_weight, round(1.0 - bm25_weight, 6)]},
        },
    }
    return {
        "description": f"BM25 + k-NN score normalisation for {index}",
        "phase_results_processors": [{"normalization-processor": processor}],
    }


def hits(response: dict[str, Any]) -> list[Hit]:
    return [
        Hit(
            chunk_id=hit["_id"],
            text=hit["_source"][TEXT_FIELD],
            source_id=hit["_source"]["source_id"],
            score=float(hit["_score"]),
        )
        for hit in response["hits"]["hits"]
    ]


def similarity(space_type: str, score: float) -> float:
    """An OpenSearch k-NN score as the local index reports it: cosine, inner product, or 1 / (1 + d^2)."""
    if space_type == "cosine":
        return 2.0 * score - 1.0
    if space_type == "innerproduct":
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    return score
