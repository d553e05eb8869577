"""Whole-template snapshots of every stack in every environment.

After an intended change: `.venv/bin/python -m pytest tests/stacks --snapshot-update`, then review the diff.
"""

from __future__ import annotations

from syrupy.extensions.json import JSONSnapshotExtension

from tests.stacks.conftest import normalise_asset_hashes


def test_every_template_matches_its_snapshot(templates, snapshot):
    snapshot_json = snapshot.use_extension(JSONSnapshotExtension)
    for path, template in sorted(templates.items()):
        assert template.to_json() == snapshot_json(name=path.replace("/", "-"), matcher=normalise_asset_hashes)
