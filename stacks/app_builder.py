"""Builds the app from context, so that `app.py`, tests and benchmarks construct the same thing."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.cicd_stack import CiCdStage
from stacks.config import group_by_account, load_app_config, selected_environments
from stacks.nag import register_checks
from stacks.stage import RagOpsStage


def build_app(app: cdk.App, *, with_checks: bool) -> cdk.App:
    """Add one stage per selected environment, and one CI/CD stage per account they use when `ragops.cicd`
    is configured; `with_checks` registers cdk-nag (snapshot apps go without)."""
    context = {key: app.node.try_get_context(key) for key in ("ragops", "environments")}
    config = load_app_config(context)
    environments = selected_environments(context, config)
    for env in environments:
        RagOpsStage(app, env)
    if config.cicd is not None:
        for account_environments in group_by_account(environments).values():
            CiCdStage(app, config.cicd, account_environments)
    if with_checks:
        register_checks(app)
    return app
