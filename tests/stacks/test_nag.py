"""cdk-nag gate: the whole app synthesizes with AwsSolutionsChecks and no unacknowledged finding."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from stacks.app_builder import build_app
from stacks.nag import acknowledge, register_checks
from tests.stacks.conftest import cdk_context


def violations(outdir: Path) -> list[str]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        f"{v['ruleName']} at {c['constructPath']}: {v['description']}"
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    ]


def test_whole_app_has_no_unacknowledged_finding(tmp_path):
    app = build_app(cdk.App(context=cdk_context(), outdir=str(tmp_path)), with_checks=True)
    try:
        app.synth()
    except RuntimeError as error:
        pytest.fail("cdk-nag findings:\n" + "\n".join(violations(tmp_path)) + f"\n({error})")


def test_gate_fails_synth_on_a_finding_and_accepts_an_acknowledgement(tmp_path):
    """The gate itself works: an unencrypted, unlogged bucket fails until each finding is acknowledged."""
    app = cdk.App(outdir=str(tmp_path / "bad"))
    bucket = s3.Bucket(cdk.Stack(app, "Probe"), "Bare")
    register_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert any("AwsSolutions-S1" in v for v in violations(tmp_path / "bad"))

    app = cdk.App(outdir=str(tmp_path / "acknowledged"))
    bucket = s3.Bucket(cdk.Stack(app, "Probe"), "Bare", enforce_ssl=True)
    acknowledge(bucket, "AwsSolutions-S1", "probe bucket of this test; access logging is not the subject")
    register_checks(app)
    app.synth()


def test_acknowledgement_without_a_specific_reason_is_refused():
    with pytest.raises(ValueError, match="specific reason"):
        acknowledge(cdk.App(), "AwsSolutions-S1", "n/a")
