"""IAM statements more than one SageMaker role needs: pulling its image and attaching to the VPC."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam

from stacks.service_actions import ECR_LAYER_ACTIONS


def ecr_pull_statements(repository_arn: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            actions=list(ECR_LAYER_ACTIONS),
            resources=[repository_arn],
        ),
        # GetAuthorizationToken has no resource-level permissions: IAM accepts only "*" for it.
        iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
    ]


def network_interfaces(stack: cdk.Stack) -> str:
    return stack.format_arn(service="ec2", resource="network-interface", resource_name="*")


def security_group_arn(stack: cdk.Stack, group: ec2.ISecurityGroup) -> str:
    return stack.format_arn(service="ec2", resource="security-group", resource_name=group.security_group_id)


def vpc_interface_statements(
    stack: cdk.Stack, vpc: ec2.IVpc, subnets: Sequence[ec2.ISubnet], security_group: ec2.ISecurityGroup
) -> list[iam.PolicyStatement]:
    """What SageMaker does with the role to put a model or job into our subnets, and nothing beyond them."""
    interfaces = network_interfaces(stack)
    return [
        # The Describe* calls SageMaker makes to attach to the VPC accept only "*" as resource.
        iam.PolicyStatement(
            actions=[
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeNetworkInterfaces",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            actions=["ec2:CreateNetworkInterface"],
            resources=[
                interfaces,
                security_group_arn(stack, security_group),
                *(stack.format_arn(service="ec2", resource="subnet", resource_name=s.subnet_id) for s in subnets),
            ],
        ),
        iam.PolicyStatement(
            actions=[
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            resources=[interfaces],
            conditions={
                "ArnEquals": {"ec2:Vpc": stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)}
            },
        ),
    ]
