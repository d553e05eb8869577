"""Whole-template snapshots per stack and environment (`pytest --snapshot-update` after intended changes)."""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.stacks.conftest import normalise_asset_hashes

STACK_PATHS = [f"{env}/{stack}" for env in ("dev", "staging", "prod") for stack in ("Storage", "Network")]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("path", STACK_PATHS, ids=lambda path: path.replace("/", "-"))
def test_template_matches_snapshot(templates, snapshot_json, path):
    assert templates[path].to_json() == snapshot_json(matcher=normalise_asset_hashes)
