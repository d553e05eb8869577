"""Under CI the engine tests fail, never skip, when no node is given: a green CI has always run them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processing.helpers import REPO_ROOT

ONE_ENGINE_TEST = (
    "tests/engines/test_opensearch_engines.py"
    "::test_the_node_refuses_ef_search_in_a_lucene_mapping_and_checks_faiss_values"
)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_without_a_node_the_engine_tests_fail_under_ci_and_skip_elsewhere(ci: str, outcome: str) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("RAGOPS_OPENSEARCH_URL", "CI")}
    env |= {"CI": ci} if ci else {}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_ENGINE_TEST],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert outcome in done.stdout, done.stdout[-1500:]
    assert done.returncode == (1 if ci else 0)
