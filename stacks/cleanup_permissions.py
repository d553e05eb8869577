"""What the clean-up hook's role may do: list and read everywhere the APIs demand it, act only on its environment.

SageMaker authorizes deletes by the resource's tags, so the delete statement names this project and environment
and requires the absence of CloudFormation's stack-name tag: what a stack owns is deleted by that stack.
"""

from __future__ import annotations

from collections.abc import Callable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from stacks.config import PROJECT, TAG_ENVIRONMENT, TAG_PROJECT
from stacks.nag import acknowledge

CLOUDFORMATION_STACK_TAG = "aws:cloudformation:stack-name"


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
    # SageMaker authorizes deletes by the resource's tags: only this project's and environment's, and never
    # what a stack owns (CloudFormation tags its resources with the stack name; their stacks delete them).
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
            resources=list(sagemaker.values()),
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{TAG_PROJECT}": PROJECT,
                    f"aws:ResourceTag/{TAG_ENVIRONMENT}": environment,
                },
                "Null": {f"aws:ResourceTag/{CLOUDFORMATION_STACK_TAG}": "true"},
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
            "endpoints are created at run time; deletes are conditioned on this environment's tags",
        ),
        (
            f"{arn}:endpoint-config/*",
            "endpoint configs are created at run time; deletes need this environment's tags",
        ),
        (f"{arn}:model/*", "models are created at run time; deletes are conditioned on this environment's tags"),
        *(
            (executions, "executions are created at run time, under this environment's pipelines named exactly")
            for executions in pipeline_arns("/execution/*")
        ),
    ):
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
