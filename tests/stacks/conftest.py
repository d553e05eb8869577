"""One synthesis per test session: every stack test asserts on these templates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from stacks.config import committed_context

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def cdk_context() -> dict[str, Any]:
    """The context `cdk synth` passes, without bundling (snapshots must not depend on Docker)."""
    return committed_context(bundling=False)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> cdk.App:
    """All environments, without the nag plugin (`Template.from_stack` cannot run with it registered)."""
    return build_app(cdk.App(context=cdk_context(), outdir=str(tmp_path_factory.mktemp("cdk.out"))), with_checks=False)


@pytest.fixture(scope="session")
def templates(app: cdk.App) -> dict[str, Template]:
    """Templates keyed by stack path, e.g. "dev/Storage"."""
    result = {}
    for stage in app.node.children:
        if isinstance(stage, cdk.Stage):
            for stack in stage.node.children:
                if isinstance(stack, cdk.Stack):
                    result[f"{stage.node.id}/{stack.node.id}"] = Template.from_stack(stack)
    return result


def normalise_asset_hashes(data: Any, path: Any) -> Any:
    """syrupy matcher: asset hashes change with any byte of an asset; the snapshot keeps their place."""
    return ASSET_HASH.sub("<asset-hash>", data) if isinstance(data, str) else data


def synth_environment(tmp_path: Path, env: str, changes: dict[str, Any]) -> dict[str, Template]:
    """One environment synthesized with `changes` merged into its config: templates keyed by stack id."""
    context = cdk_context()
    context["ragops"]["environments"][env].update(changes)
    app = build_app(cdk.App(context={**context, "environments": env}, outdir=str(tmp_path)), with_checks=False)
    stage = app.node.find_child(env)
    return {stack.node.id: Template.from_stack(stack) for stack in stage.node.children if isinstance(stack, cdk.Stack)}


def waiter_retry(t: Template, construct_id: str = "") -> dict:
    """The retry policy of the provider framework's waiter state machine (its one polling task): the template's one
    machine, or the one of the construct `construct_id` where several wait."""
    machines = t.find_resources("AWS::StepFunctions::StateMachine")
    (machine,) = (m for logical_id, m in machines.items() if logical_id.startswith(construct_id))
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    definition = json.loads("".join(p if isinstance(p, str) else "<arn>" for p in parts))
    (retry,) = definition["States"]["framework-isComplete-task"]["Retry"]
    return retry
