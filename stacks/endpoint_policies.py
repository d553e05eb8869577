"""What each VPC endpoint admits: only principals of this account, only the actions our workloads call, and on
the S3 gateway only the buckets the environment reads and writes. Anything else inside the VPC (a compromised
dependency, a mistyped bucket) cannot use the endpoints to reach other accounts' resources."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from stacks import service_actions as actions
from stacks.jumpstart.catalog import jumpstart_bucket

# Interface endpoint -> the actions the environment's roles are granted on that service.
INTERFACE_ACTIONS: dict[str, tuple[str, ...]] = {
    "SageMakerApi": actions.SAGEMAKER_API_ACTIONS,
    "SageMakerRuntime": actions.ENDPOINT_INVOKE_ACTIONS,
    "SageMakerExperiments": actions.MLFLOW_ACTIONS,
    "BedrockRuntime": actions.BEDROCK_INVOKE_ACTIONS,
    "Sts": actions.STS_ACTIONS,
    "CloudWatchLogs": actions.LOG_WRITE_ACTIONS,
    "EcrApi": actions.ECR_PULL_ACTIONS,
    "EcrDocker": actions.ECR_PULL_ACTIONS,
}


def interface_statement(endpoint: str, *, account: str, region: str, partition: str) -> iam.PolicyStatement:
    """Who (this account's principals) and what (our actions); the roles' own policies name the resources, except
    for MLflow, whose endpoint SageMaker documents with this account's tracking servers as the resource."""
    resource = (
        f"arn:{partition}:sagemaker:{region}:{account}:mlflow-tracking-server/*"
        if endpoint == "SageMakerExperiments"
        else "*"
    )
    return iam.PolicyStatement(
        principals=[iam.AnyPrincipal()],
        actions=list(INTERFACE_ACTIONS[endpoint]),
        resources=[resource],
        conditions={"StringEquals": {"aws:PrincipalAccount": account}},
    )


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
