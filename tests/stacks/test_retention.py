"""`cdk destroy "<env>/*"` leaves only what the environment's removal policy keeps, and what it keeps still works:
every resource a retained resource needs is retained too (the rule in tests/stacks/retention.py), across stacks."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.stacks.retention import Address, Templates, lost_needs


def by_stack_name(templates: dict[str, Template]) -> Templates:
    """The session's templates keyed by deployed stack name ("prod/Network" deploys as "prod-Network")."""
    return Templates({path.replace("/", "-"): template.to_json() for path, template in templates.items()})


def test_every_environment_retains_what_its_retained_resources_need(templates):
    assert lost_needs(by_stack_name(templates)) == []


def test_the_rule_sees_what_prod_keeps_and_what_those_resources_need(templates):
    """Not vacuous: prod keeps its domain, tracking server, buckets and their roles, and the rule finds their needs."""
    rule = by_stack_name(templates)

    def one(stack: str, resource_type: str) -> Address:
        (logical_id,) = templates[stack.replace("-", "/")].find_resources(resource_type)
        return Address(stack, logical_id)

    def logical_ids(addresses) -> set[str]:
        return {a.logical_id for a in addresses}

    domain = one("prod-VectorStore", "AWS::OpenSearchService::Domain")
    needed = rule.needs(domain)
    assert rule.retained(domain)
    assert sum(a.stack == "prod-Network" and "Subnet" in a.logical_id for a in needed) == 3
    assert {"PipelineRoleDCFDBB91", "OperatorRole6A7B6B68"} <= logical_ids(needed)
    assert any(a.logical_id.startswith("DomainSecurityGroup") for a in needed)
    role = one("prod-Tracking", "AWS::IAM::Role")
    assert any(a.logical_id.startswith("ServerRoleDefaultPolicy") for a in rule.needs(role))
    for bucket in templates["prod/Storage"].find_resources("AWS::S3::Bucket"):
        assert any(
            rule.resource(a)["Type"] == "AWS::S3::BucketPolicy" for a in rule.needs(Address("prod-Storage", bucket))
        )
    # The job role's policies live in the pipeline stack, attached across stacks.
    job_role_policies = rule.needs(Address("prod-VectorStore", "PipelineRoleDCFDBB91"))
    assert {a.stack for a in job_role_policies} == {"prod-Pipeline"}


def resource(resource_type: str, properties: dict[str, Any], retained: bool = False) -> dict[str, Any]:
    return {"Type": resource_type, "Properties": properties, **({"DeletionPolicy": "Retain"} if retained else {})}


def test_the_rule_follows_principals_and_cross_stack_outputs_but_not_grants_or_providers():
    role = resource("AWS::IAM::Role", {})
    network = {
        "Resources": {"Group": resource("AWS::EC2::SecurityGroup", {}), "Role": role},
        "Outputs": {
            "GroupOut": {"Value": {"Fn::GetAtt": ["Group", "GroupId"]}},
            "RoleOut": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}, "Export": {"Name": "role-arn"}},
        },
    }
    store = {
        "Resources": {
            "Target": resource("AWS::S3::Bucket", {}),
            "Provider": resource("AWS::Lambda::Function", {}),
            "Domain": resource(
                "AWS::OpenSearchService::Domain",
                {
                    "VPCOptions": {
                        "SecurityGroupIds": [{"Fn::GetStackOutput": {"StackName": "net", "OutputName": "GroupOut"}}]
                    },
                    "AccessPolicies": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "es:ESHttpGet",
                                "Principal": {"AWS": {"Fn::ImportValue": "role-arn"}},
                                "Resource": {"Fn::Sub": "${Target.Arn}/*"},
                            }
                        ]
                    },
                },
                retained=True,
            ),
            "Marker": resource("Custom::Marker", {"ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}}, retained=True),
            "Policy": resource(
                "AWS::IAM::Policy", {"Roles": [{"Fn::GetStackOutput": {"StackName": "net", "OutputName": "RoleOut"}}]}
            ),
        }
    }
    rule = Templates({"net": network, "store": store})
    assert lost_needs(rule) == [
        "store/Domain needs net/Group (referenced by its properties)",
        "store/Domain needs net/Role (referenced by its properties)",
    ]
    network["Resources"]["Group"]["DeletionPolicy"] = network["Resources"]["Role"]["DeletionPolicy"] = "Retain"
    assert lost_needs(rule) == ["net/Role needs store/Policy (a policy attached to it)"]


DRAIN = "Custom::RagOpsInterfaceDrain"


@pytest.mark.parametrize("path", ["dev/VectorStore", "prod/VectorStore", "prod/Models", "prod/Pipeline"])
def test_an_interface_drain_waits_only_for_owners_a_destroy_deletes(templates, path):
    """A drain in front of a kept domain would wait its full 25 minutes for interfaces that stay, then fail."""
    rule = by_stack_name(templates)
    stack = path.replace("/", "-")
    drains = templates[path].find_resources(DRAIN)
    for drain_id, drain in drains.items():
        owners = [
            Address(stack, logical_id)
            for logical_id, other in templates[path].to_json()["Resources"].items()
            if drain_id in other.get("DependsOn", [])
        ]
        assert owners
        assert not any(rule.retained(owner) for owner in owners), owners
        (group,) = rule.references(stack, drain["Properties"]["SecurityGroupId"])
        assert not rule.retained(group)
    assert bool(drains) == (path != "prod/VectorStore")


def test_a_kept_domain_keeps_its_network_but_not_what_bills(templates):
    """prod's destroy keeps the VPC and subnets under its domain; endpoints, route tables and groups go."""
    network = by_stack_name(templates)
    kept = {
        network.resource(a)["Type"] for a, _ in network.resources() if a.stack == "prod-Network" and network.retained(a)
    }
    assert kept == {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::Logs::LogGroup", "Custom::VpcRestrictDefaultSG"}
    for env in ("dev", "staging"):
        assert not templates[f"{env}/Network"].find_resources("AWS::EC2::VPC", {"DeletionPolicy": "Retain"})
