"""cdk-nag: the AwsSolutions rule pack as a synth-time gate, and the project's acknowledgements.

Each acknowledgement names one exact finding id and says why the finding does not apply; it is made
beside the construct it concerns, through `acknowledge`, so the reason sits next to the code.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def register_checks(app: cdk.App) -> None:
    """Make `cdk synth` fail on any unacknowledged AwsSolutions finding."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    """Acknowledge one exact finding on `scope` and everything below it."""
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {finding_id} needs a specific reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding_id, reason=reason))


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for one literal resource ARN (tokens such as the partition resolved)."""
    rendered = cdk.Stack.of(scope).resolve(resource)
    if not isinstance(rendered, str):
        raise ValueError(f"IAM5 acknowledgement needs a literal resource, got {rendered!r}")
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


def acknowledge_sdk_call_function(stack: cdk.Stack, what: str) -> None:
    """Acknowledge the managed logging policy on the function aws-cdk-lib shares among a stack's SDK calls."""
    singleton = stack.node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
    acknowledge(
        singleton,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "aws-cdk-lib's custom-resource function: the managed policy only writes CloudWatch Logs; its SDK calls "
        f"are granted separately and narrowly ({what})",
    )
