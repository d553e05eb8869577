"""How long things live: log retention and what a stack delete does, from the environment config."""

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig

R = logs.RetentionDays
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: R.ONE_DAY, 3: R.THREE_DAYS, 5: R.FIVE_DAYS, 7: R.ONE_WEEK, 14: R.TWO_WEEKS, 30: R.ONE_MONTH,
    60: R.TWO_MONTHS, 90: R.THREE_MONTHS, 120: R.FOUR_MONTHS, 150: R.FIVE_MONTHS, 180: R.SIX_MONTHS,
    365: R.ONE_YEAR, 400: R.THIRTEEN_MONTHS, 545: R.EIGHTEEN_MONTHS, 731: R.TWO_YEARS, 1096: R.THREE_YEARS,
    1827: R.FIVE_YEARS, 2192: R.SIX_YEARS, 2557: R.SEVEN_YEARS, 2922: R.EIGHT_YEARS, 3288: R.NINE_YEARS,
    3653: R.TEN_YEARS,
}  # fmt: skip


def log_retention(days: int) -> logs.RetentionDays:
    """The enum member for `days`; config validation restricts days to these keys."""
    return RETENTION_DAYS[days]


def removal_policy(config: EnvironmentConfig) -> cdk.RemovalPolicy:
    """dev-like environments are destroyed with their stacks; prod-like ones keep their data."""
    return cdk.RemovalPolicy.DESTROY if config.destroy_on_delete else cdk.RemovalPolicy.RETAIN


def encrypted_log_group(scope: Construct, construct_id: str, key: kms.IKey, config: EnvironmentConfig) -> logs.LogGroup:
    """A log group of this environment: the project key, the environment's retention and removal policy."""
    return logs.LogGroup(
        scope,
        construct_id,
        encryption_key=key,
        retention=log_retention(config.log_retention_days),
        removal_policy=removal_policy(config),
    )


def keep_with_policies(resource: iam.Role | s3.Bucket, removal: cdk.RemovalPolicy) -> None:
    """Apply `removal` to a role or bucket and to the policy CDK attaches to it: a kept role without its policy, or
    a kept bucket without its policy (TLS-only deny, log-delivery grant), stays but stops working as designed.
    Call it after the last statement is added, so that the policy exists."""
    resource.apply_removal_policy(removal)
    policy = resource.policy if isinstance(resource, s3.Bucket) else resource.node.try_find_child("DefaultPolicy")
    if policy is not None:
        policy.apply_removal_policy(removal)


def log_provider_calls(
    stack: cdk.Stack, provider_id: str, key: kms.IKey, config: EnvironmentConfig
) -> logs.LogGroup | None:
    """Give a `cdk.CustomResourceProvider` handler (aws-cdk-lib's own, e.g. the S3 auto-delete or default security
    group providers) a log group of this environment. Left alone, Lambda creates `/aws/lambda/<function>` on the
    first call, with no retention and outside the stack, so it outlives every destroy; these providers run on delete.
    None where the stack has no such provider."""
    provider = stack.node.try_find_child(provider_id)
    if provider is None:
        return None
    handler = provider.node.find_child("Handler")
    log_group = encrypted_log_group(stack, f"{provider_id.removeprefix('Custom::')}Logs", key, config)
    handler.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
    return log_group
