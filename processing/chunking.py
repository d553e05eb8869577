"""The two chunking strategies (langchain-text-splitters) and content-derived chunk ids."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from langchain_text_splitters import CharacterTextSplitter, RecursiveCharacterTextSplitter

# Paragraphs, lines, sentences, words, then characters: the recursive splitter keeps the largest unit that fits.
RECURSIVE_SEPARATORS = ["\n\n", "\n", ". ", " ", ""]


def normalise(text: str) -> str:
    """Whitespace-collapsed, case-folded text: two chunks that differ only in spacing or case are one chunk."""
    return " ".join(text.split()).casefold()


def chunk_id(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def _fixed_size(chunk_size: int, chunk_overlap: int) -> Callable[[str], list[str]]:
    # Fixed windows of `chunk_size` characters, cut at word boundaries.
    splitter = CharacterTextSplitter(separator=" ", chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    return splitter.split_text


def _recursive(chunk_size: int, chunk_overlap: int) -> Callable[[str], list[str]]:
    splitter = RecursiveCharacterTextSplitter(
        separators=RECURSIVE_SEPARATORS, chunk_size=chunk_size, chunk_overlap=chunk_overlap, keep_separator="end"
    )
    return splitter.split_text


CHUNKERS: dict[str, Callable[[int, int], Callable[[str], list[str]]]] = {
    "FixedSizeChunker": _fixed_size,
    "RecursiveChunker": _recursive,
}


def make_splitter(strategy: str, chunk_size: int, chunk_overlap: int) -> Callable[[str], list[str]]:
    """A function text -> chunk texts (stripped, non-empty) for the named strategy."""
    split = CHUNKERS[strategy](chunk_size, chunk_overlap)
    return lambda text: [piece.strip() for piece in split(text) if piece.strip()]
