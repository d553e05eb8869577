"""What each VPC endpoint admits: only principals of this account, only the actions our workloads call, and on
the S3 gateway only the buckets the environment reads and writes. Anything else inside the VPC (a compromised
dependency, a mistyped bucket) cannot use the endpoints to reach other accounts' resources."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from stacks import service_actions as actions
from stacks.jumpstart.catalog import jumpstart_bucket


def interface_statement(admitted: tuple[str, ...], *, account: str, resource: str) -> iam.PolicyStatement:
    """Who (this account's principals) and what (`admitted`); the roles' own policies name the resources."""
    return iam.PolicyStatement(
        principals=[iam.AnyPrincipal()],
        actions=list(admitted),
        resources=[resource],
        conditions={"StringEquals": {"aws:PrincipalAccount": account}},
    )


def mlflow_tracking_servers(stack: cdk.Stack) -> str:
    return stack.format_arn(service="sagemaker", resource="mlflow-tracking-server", resource_name="*")


def ecr_layer_bucket(region: str) -> str:
    """Where ECR serves image layers from (through presigned URLs, so no principal of ours signs them)."""
    return f"prod-{region}-starport-layer-bucket"


def s3_gateway_statements(project_buckets: list[str], region: str, partition: str) -> list[iam.PolicyStatement]:
    def arns(bucket: str) -> list[str]:
        return [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"]

    return [
        iam.PolicyStatement(
            principals=[iam.AnyPrincipal()],
            actions=list(actions.S3_PROJECT_ACTIONS),
            resources=[arn for bucket in project_buckets for arn in arns(bucket)],
        ),
        # Model artifacts the endpoints load (JumpStart's regional bucket), read-only.
        iam.PolicyStatement(
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject", "s3:ListBucket"],
            resources=arns(jumpstart_bucket(region)),
        ),
        iam.PolicyStatement(
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[f"arn:{partition}:s3:::{ecr_layer_bucket(region)}/*"],
        ),
    ]
