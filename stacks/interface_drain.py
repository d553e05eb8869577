"""A custom resource that holds a security group's deletion until the network interfaces in it are gone.

SageMaker endpoints and OpenSearch VPC domains leave their interfaces in the group for minutes after they are
deleted, and SageMaker needs the model's execution role to remove them. CloudFormation deletes in reverse
dependency order, so the owners (endpoints, domain) depend on the drain and the drain on the group and the roles:
the owners go first, the drain waits for the interfaces (lambda/eni_drain), then the roles and group go.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from stacks.config import EnvironmentConfig
from stacks.hooks import RUNTIME, hook_code, hook_role, waiting_provider
from stacks.lifecycle import encrypted_log_group
from stacks.nag import acknowledge

# SageMaker documents that an endpoint's resources may remain "for a few minutes" after DeleteEndpoint; 25 minutes
# covers that several times over and, with the framework's backstop, stays inside CloudFormation's hour.
DRAIN_WAIT = cdk.Duration.minutes(25)
DRAIN_POLL = cdk.Duration.seconds(30)


class InterfaceDrain(Construct):
    """Deleted after `owners` and before `security_group` and `keep` (what the owners' interfaces still need)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        security_group: ec2.ISecurityGroup,
        owners: Sequence[IConstruct],
        keep: Sequence[IConstruct],
        key: kms.IKey,
        config: EnvironmentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = encrypted_log_group(self, "Logs", key, config)
        role = hook_role(
            self,
            "Role",
            log_group=log_group,
            description="Interface drain: lists the network interfaces of one security group",
        )
        # DescribeNetworkInterfaces has no resource-level permissions: IAM accepts only "*" for it.
        role.add_to_policy(iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces"], resources=["*"]))
        function = lambda_.Function(
            self,
            "Function",
            description="Waits on stack delete until a security group has no network interfaces",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.lambda_handler",
            code=hook_code(self, "eni_drain"),
            role=role,
            memory_size=128,
            timeout=cdk.Duration.minutes(1),
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={"RAGOPS_DRAIN_WAIT_MINUTES": str(int(DRAIN_WAIT.to_minutes()))},
        )
        provider = waiting_provider(
            self, "Provider", handler=function, wait=DRAIN_WAIT, poll=DRAIN_POLL, log_group=log_group
        )
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::RagOpsInterfaceDrain",
            properties={"SecurityGroupId": security_group.security_group_id},
        )
        for owner in owners:
            owner.node.add_dependency(self.resource)
        for kept in (security_group, *keep):
            self.resource.node.add_dependency(kept)

        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeNetworkInterfaces, the role's only EC2 action, has no resource-level permissions",
        )
