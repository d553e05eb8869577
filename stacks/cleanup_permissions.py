"""What the clean-up hook's role may do: list and read everywhere the APIs demand it, act only on its environment.

SageMaker authorizes deletes by the resource's tags, so the delete statement requires this project's and
environment's tags and the creator tag that the run-time code sets on what it creates (`ragops:created-by`,
processing/backends/on_demand.py). Ownership is that positive mark: a stack's own resources carry no creator tag,
and CloudFormation puts no system tags on SageMaker endpoints, endpoint configs or models (their registry schemas
say `"cloudFormationSystemTags": false`), so no condition on a tag's absence could tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from processing.backends.on_demand import CREATED_BY_TAG, ON_DEMAND_CREATOR
from stacks.config import PROJECT, TAG_ENVIRONMENT, TAG_PROJECT
from stacks.nag import acknowledge

# Whose run-time creations the hook may delete (the hook's own list: lambda/cleanup/inventory.py CREATORS).
CREATORS = (ON_DEMAND_CREATOR,)


def grant_cleanup(
    role: iam.IRole, sagemaker_arn: str, pipeline_arns: Callable[[str], list[str]], environment: str
) -> None:
    """`sagemaker_arn`: `arn:<partition>:sagemaker:<region>:<account>`; `pipeline_arns(suffix)`: this environment's
    pipelines by exact name (a prefix would reach another environment whose name starts with this one's)."""
    # These APIs have no resource-level permissions: listing and tag/metric reads need "*".
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "tag:GetResources",
                "cloudwatch:GetMetricStatistics",
                "sagemaker:ListEndpoints",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListModels",
                "sagemaker:ListPipelines",
            ],
            resources=["*"],
        )
    )
    sagemaker = {kind: f"{sagemaker_arn}:{kind}/*" for kind in ("endpoint", "endpoint-config", "model")}
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
            resources=[sagemaker["endpoint"], sagemaker["endpoint-config"]],
        )
    )
    # SageMaker authorizes deletes by the resource's tags: only what this environment's run-time code created and
    # tagged as its creator. A stack's own resources lack the creator tag, so the delete is denied for them.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
            resources=list(sagemaker.values()),
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{TAG_PROJECT}": PROJECT,
                    f"aws:ResourceTag/{TAG_ENVIRONMENT}": environment,
                    f"aws:ResourceTag/{CREATED_BY_TAG}": list(CREATORS),
                },
            },
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["sagemaker:ListPipelineExecutions"], resources=pipeline_arns(""))
    )
    # A Delete tears the environment down only while this stack itself is being deleted: its own status.
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[cdk.Stack.of(role).stack_id])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["sagemaker:StopPipelineExecution"], resources=pipeline_arns("/execution/*"))
    )
    arn = sagemaker_arn
    for resource, reason in (
        (
            f"{arn}:endpoint/*",
            "on-demand endpoints are created at run time; deletes need this environment's and the creator's tags",
        ),
        (
            f"{arn}:endpoint-config/*",
            "deletes need this environment's tags and a run-time creator's tag, which no stack's config carries",
        ),
        (
            f"{arn}:model/*",
            "deletes need this environment's tags and a run-time creator's tag, which no stack's model carries",
        ),
        *(
            (executions, "executions are created at run time, under this environment's pipelines named exactly")
            for executions in pipeline_arns("/execution/*")
        ),
    ):
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
