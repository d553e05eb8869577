"""Retention for a log group AWS names and shares across the account, such as SageMaker's processing-job logs.

SageMaker writes every processing job's logs to `/aws/sagemaker/ProcessingJobs`, a group it creates on first use
with no retention, so logs would be kept forever. A `logs.LogGroup` cannot own it: the group may already exist,
and other workloads of the account write to it. Two SDK calls manage only what we need: create the group if it is
missing, then set its retention on every deploy. The key is not set: encrypting a shared group with an
environment's key would break every other writer when that key is deleted. A destroy leaves the group and its
retention in place.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.nag import acknowledge_sdk_call_function, acknowledge_wildcard_resource


class SharedLogGroupRetention(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group_name: str,
        retention_days: int,
        logs_of_calls: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # Log-group actions authorize on the group's ARN with its ":*" stream suffix.
        group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{log_group_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

        def sdk_call(action: str, parameters: dict[str, object], ignore: str | None = None) -> cr.AwsSdkCall:
            return cr.AwsSdkCall(
                service="CloudWatchLogs",
                action=action,
                parameters=parameters,
                physical_resource_id=cr.PhysicalResourceId.of(log_group_name),
                ignore_error_codes_matching=ignore,
            )

        def resource(construct_id: str, action: str, call: cr.AwsSdkCall, *, on_update: bool) -> cr.AwsCustomResource:
            created = cr.AwsCustomResource(
                self,
                construct_id,
                on_create=call,
                on_update=call if on_update else None,
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [iam.PolicyStatement(actions=[f"logs:{action}"], resources=[group_arn])]
                ),
                install_latest_aws_sdk=False,
                log_group=logs_of_calls,
            )
            acknowledge_wildcard_resource(created, group_arn, f"the ':*' suffix IAM uses for {log_group_name} itself")
            return created

        create = resource(
            "Create",
            "CreateLogGroup",
            sdk_call("createLogGroup", {"logGroupName": log_group_name}, "^ResourceAlreadyExistsException$"),
            on_update=False,
        )
        retention = resource(
            "Retention",
            "PutRetentionPolicy",
            sdk_call("putRetentionPolicy", {"logGroupName": log_group_name, "retentionInDays": retention_days}),
            on_update=True,
        )
        retention.node.add_dependency(create)
        acknowledge_sdk_call_function(stack, f"it creates {log_group_name} if missing and sets its retention")
