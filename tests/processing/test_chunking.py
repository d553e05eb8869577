import pytest

from processing.chunking import chunk_id, make_splitter
from processing.config import RunConfig
from processing.stages.chunk import chunk_corpus
from tests.processing.helpers import sample_records

TEXT = " ".join(c for r in sample_records(6).values() for c in r["CONTEXTS"])


@pytest.mark.parametrize("strategy", ["FixedSizeChunker", "RecursiveChunker"])
def test_chunks_respect_size_and_cover_the_text(strategy) -> None:
    pieces = make_splitter(strategy, 200, 40)(TEXT)
    assert len(pieces) > len(TEXT) // 200
    assert all(0 < len(p) <= 200 for p in pieces)
    assert set(TEXT.split()) == {w for p in pieces for w in p.split()}


def test_recursive_chunker_prefers_sentence_ends() -> None:
    pieces = make_splitter("RecursiveChunker", 200, 0)(TEXT)
    assert sum(p.endswith(".") for p in pieces) > len(pieces) / 2


def test_fixed_size_chunks_overlap() -> None:
    first, second = make_splitter("FixedSizeChunker", 200, 60)(TEXT)[:2]
    assert first.split()[-1] in second.split()[:12]


def test_chunk_id_ignores_spacing_and_case_only() -> None:
    assert chunk_id("Object  versioning\nkeeps") == chunk_id("object versioning keeps")
    assert chunk_id("object versioning keeps") != chunk_id("object versioning kept")


def test_duplicate_contexts_collapse_and_both_questions_keep_them_as_gold() -> None:
    config = RunConfig(chunk_size=2000, chunk_overlap=0)
    shared = "Availability zones have independent power and cooling."
    sources = [("q1", "context-0", shared), ("q2", "context-0", "  " + shared.upper()), ("q2", "context-1", "Other.")]
    unique, by_source, produced = chunk_corpus(config, sources)
    assert produced == 3
    assert len(unique) == 2
    assert by_source["q1"][0] in by_source["q2"]
    assert unique[by_source["q1"][0]].source_id == "q1"
