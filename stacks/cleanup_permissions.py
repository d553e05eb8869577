"""What the clean-up hook's role may do: list and read everywhere the APIs demand it, act only on its environment.

SageMaker authorizes deletes by the resource's tags, so the delete statement requires this project's and
environment's tags and the creator tag that the run-time code sets on what it creates (`ragops:created-by`,
processing/backends/on_demand.py). That code creates endpoints only, on a stack's endpoint config, so endpoints
are all the hook may delete. Ownership is that positive mark: a stack's own endpoints carry no creator tag, and
CloudFormation puts no system tags on SageMaker endpoints (the registry schema says
`"cloudFormationSystemTags": false`), so no condition on a tag's absence could tell them apart.
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
                "sagemaker:ListPipelines",
            ],
            resources=["*"],
        )
    )
    # Run-time code creates endpoints only (on a stack's endpoint config), so endpoints are all the hook deletes.
    endpoints = f"{sagemaker_arn}:endpoint/*"
    role.add_to_principal_policy(iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[endpoints]))
    # SageMaker authorizes deletes by the resource's tags: only what this environment's run-time code created and
    # tagged as its creator. A stack's own endpoints lack the creator tag, so the delete is denied for them.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DeleteEndpoint"],
            resources=[endpoints],
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
    for resource, reason in (
        (
            endpoints,
            "on-demand endpoints are created at run time; deletes need this environment's and the creator's tags",
        ),
        *(
            (executions, "executions are created at run time, under this environment's pipelines named exactly")
            for executions in pipeline_arns("/execution/*")
        ),
    ):
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
