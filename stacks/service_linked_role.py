"""A service's service-linked role, created once per account, and a wait until IAM has made it usable.

OpenSearch needs its service-linked role to create a VPC domain, and no other resource creates it.
`AWS::IAM::ServiceLinkedRole` fails where the role exists (any account that ever had a VPC domain), so the
function (lambda/service_linked_role) calls `CreateServiceLinkedRole` itself and then waits: IAM is eventually
consistent, and a domain created right after the call can be refused for a role the service does not see yet.
Resources that need the role depend on `resource`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.hooks import hook_role, provider_handler, waiting_provider
from stacks.lifecycle import encrypted_log_group

# How long a new role must have existed before its dependants are created. IAM documents no propagation time; two
# minutes is a bounded margin over the seconds such lags usually take (only a fresh account can confirm it). A
# role that already existed is older than this, so most deploys do not wait at all.
SETTLE = cdk.Duration.minutes(2)
WAIT = cdk.Duration.minutes(10)  # the role missing for this long is not a lag: the deploy fails naming it
POLL = cdk.Duration.seconds(15)


class ServiceLinkedRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        role_name: str,
        key: kms.IKey,
        config: EnvironmentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        role_arn = f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/{service}/{role_name}"
        log_group = encrypted_log_group(self, "Logs", key, config)
        role = hook_role(
            self, "FunctionRole", log_group=log_group, description=f"Creates {role_name} and waits until it exists"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[role_arn],
                conditions={"StringEquals": {"iam:AWSServiceName": service}},
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["iam:GetRole"], resources=[role_arn]))
        function = provider_handler(
            self,
            code="service_linked_role",
            description=f"Creates the service-linked role of {service} once per account and waits until it exists",
            role=role,
            log_group=log_group,
            environment={
                "RAGOPS_SLR_WAIT_MINUTES": str(int(WAIT.to_minutes())),
                "RAGOPS_SLR_SETTLE_SECONDS": str(int(SETTLE.to_seconds())),
            },
        )
        provider = waiting_provider(self, "Provider", handler=function, wait=WAIT, poll=POLL, log_group=log_group)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::RagOpsServiceLinkedRole",
            properties={"AWSServiceName": service, "RoleName": role_name},
        )
