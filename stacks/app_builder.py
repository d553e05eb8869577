"""Builds the app from context, so that `app.py`, tests and benchmarks construct the same thing."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.config import load_app_config, selected_environments
from stacks.nag import register_checks
from stacks.stage import RagOpsStage


def build_app(app: cdk.App, *, with_checks: bool) -> cdk.App:
    """Add one stage per selected environment; `with_checks` registers cdk-nag (snapshot apps go without)."""
    context = {key: app.node.try_get_context(key) for key in ("ragops", "environments")}
    config = load_app_config(context)
    for env in selected_environments(context, config):
        RagOpsStage(app, env)
    if with_checks:
        register_checks(app)
    return app
