"""Tracking: a SageMaker managed MLflow tracking server whose artifacts live under the artifact bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.lifecycle import keep_with_policies, removal_policy
from stacks.nag import acknowledge_wildcard_resource

ARTIFACT_PREFIX = "mlflow"


class TrackingStack(cdk.Stack):
    """`tracking_server_arn` is the MLflow tracking URI the pipeline uses (with the sagemaker-mlflow plugin)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        artifact_bucket_name: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.tracking
        bucket_arn = f"arn:{self.partition}:s3:::{artifact_bucket_name}"
        objects = f"{bucket_arn}/{ARTIFACT_PREFIX}/*"
        self.role = iam.Role(
            self,
            "ServerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{config.resource_prefix}: MLflow tracking server, artifacts under {ARTIFACT_PREFIX}/",
        )
        for statement in (
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources=[objects]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [ARTIFACT_PREFIX, f"{ARTIFACT_PREFIX}/*"]}},
            ),
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bucket_arn]),
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], resources=[key.key_arn]
            ),
        ):
            self.role.add_to_policy(statement)
        acknowledge_wildcard_resource(
            self.role,
            objects,
            "MLflow creates run artifact keys at run time; the grant is limited to the server's own prefix",
        )

        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=f"{config.resource_prefix}-mlflow",
            artifact_store_uri=f"s3://{artifact_bucket_name}/{ARTIFACT_PREFIX}",
            role_arn=self.role.role_arn,
            tracking_server_size=settings.server_size,
            mlflow_version=settings.mlflow_version,
            weekly_maintenance_window_start=settings.weekly_maintenance_window,
            automatic_model_registration=False,
        )
        self.server.node.add_dependency(self.role)  # the artifact-store policy must exist before the server starts
        # The server's database is the run history: a `retain` environment keeps it (and bills it) after a destroy,
        # together with the role and the role's policy it needs to reach its artifacts.
        self.server.apply_removal_policy(removal_policy(config))
        keep_with_policies(self.role, removal_policy(config))

    @property
    def tracking_server_arn(self) -> str:
        return self.server.attr_tracking_server_arn
