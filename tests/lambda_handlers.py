"""Loads `lambda/<name>/handler.py` by file path: `lambda` is a Python keyword, so no `import lambda...`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


SHARED = ROOT / "lambda" / "shared"  # copied into every function's code at synth (stacks/hooks.py)


def load_handler(name: str) -> ModuleType:
    """Import a handler under a unique module name, as the Lambda runtime would from its own folder (which is
    on the path while it loads, with the shared modules beside it, as in the function's code)."""
    module_name = f"ragops_lambda_{name}"
    folder = ROOT / "lambda" / name
    spec = importlib.util.spec_from_file_location(module_name, folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pydantic resolve annotations through sys.modules
    sys.path[:0] = [str(folder), str(SHARED)]
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        sys.path.remove(str(SHARED))
    return module
