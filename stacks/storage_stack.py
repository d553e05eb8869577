"""Storage: the project's KMS key and its buckets (data, artifacts, server access logs)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.lifecycle import keep_with_policies, log_provider_calls, removal_policy

# aws-cdk-lib's provider behind `auto_delete_objects` (one per stack; destroy environments only).
AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def data_bucket_name(config: EnvironmentConfig) -> str:
    """Fixed, so the deploy role (stacks/cicd_stack.py) can name the promotion records it reads."""
    return f"{config.resource_prefix}-data-{config.account}-{config.region}"


class StorageStack(cdk.Stack):
    """One customer-managed key encrypts every bucket, log group and domain of the environment."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)

        self.key = kms.Key(
            self,
            "Key",
            description=f"{config.resource_prefix}: data, artifacts, logs, domain and endpoint volumes",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=cdk.Duration.days(7 if config.destroy_on_delete else 30),
        )
        # CloudWatch Logs encrypts log groups of this account and region only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": self._log_groups_arn()}},
            )
        )

        # Server access log targets cannot use SSE-KMS; S3-managed keys are the documented choice.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(config.storage.access_log_expiration_days),
                    noncurrent_version_expiration=cdk.Duration.days(config.storage.noncurrent_version_expiration_days),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=config.destroy_on_delete,
        )
        # Named, so that other stacks' policies on their prefixes render as literal ARNs (exact cdk-nag ids).
        self.data_bucket_name = data_bucket_name(config)
        self.data_bucket = self._encrypted_bucket("Data", "data/", config, removal, bucket_name=self.data_bucket_name)
        self.artifact_bucket_name = f"{config.resource_prefix}-artifacts-{config.account}-{config.region}"
        self.artifact_bucket = self._encrypted_bucket(
            "Artifacts", "artifacts/", config, removal, bucket_name=self.artifact_bucket_name
        )
        for bucket in (self.access_log_bucket, self.data_bucket, self.artifact_bucket):
            keep_with_policies(bucket, removal)
        log_provider_calls(self, AUTO_DELETE_PROVIDER, self.key, config)

    def _log_groups_arn(self) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"

    def _encrypted_bucket(
        self,
        construct_id: str,
        log_prefix: str,
        config: EnvironmentConfig,
        removal: cdk.RemovalPolicy,
        bucket_name: str | None = None,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=cdk.Duration.days(config.storage.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=config.destroy_on_delete,
        )
