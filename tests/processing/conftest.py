"""Fixtures shared by the confidence and generator tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models


@pytest.fixture
def tokenizer_path(tmp_path: Path) -> Path:
    """A byte-level word tokenizer built in the test for the ids of the recorded Bedrock payload.

    "é" is deliberately split over two byte tokens (ids 43154 and 279) to exercise streaming decoding.
    """
    vocab = {"<unk>": 0, "ĠYes": 7566, ",": 11, "Ġcaf": 24663, "Ã": 43154, "©": 279, "Ġrisk": 5326, ".": 13}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.decoder = decoders.ByteLevel()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    return path
