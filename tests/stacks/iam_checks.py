"""Shared IAM assertions: no wildcard action anywhere, and "*" resources only for the actions that need it."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

# Actions IAM authorizes on "*" only (no resource-level permissions); each use is commented in the stack code.
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def assert_least_privilege(template: Template) -> None:
    for statement in identity_statements(template):
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), statement
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= STAR_RESOURCE_ACTIONS, statement
