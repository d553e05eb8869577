"""Loads `lambda/<name>/handler.py` by file path: `lambda` is a Python keyword, so no `import lambda...`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def load_handler(name: str) -> ModuleType:
    """Import a handler under a unique module name, as the Lambda runtime would from its own folder (which is
    on the path while it loads, so the handler imports the folder's other modules as the runtime lets it)."""
    module_name = f"ragops_lambda_{name}"
    folder = ROOT / "lambda" / name
    spec = importlib.util.spec_from_file_location(module_name, folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pydantic resolve annotations through sys.modules
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module
