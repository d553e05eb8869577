"""Interface drains: CloudFormation deletes in reverse dependency order, so the endpoints (or the domain) depend
on the drain and the drain on the security group and the execution roles: owners first, then the drain's wait for
their interfaces, then what those interfaces needed."""

from __future__ import annotations

import pytest

from tests.stacks.conftest import ENVIRONMENTS, waiter_retry
from tests.stacks.iam_checks import as_list, assert_least_privilege

DRAIN = "Custom::RagOpsInterfaceDrain"


def ids(template, kind: str) -> set[str]:
    return set(template.find_resources(kind))


def drain(template) -> tuple[str, dict, str]:
    """The stack's one drain, checked to watch the stack's one security group: (drain id, drain, group id)."""
    ((logical_id, resource),) = template.find_resources(DRAIN).items()
    (group_id,) = ids(template, "AWS::EC2::SecurityGroup")
    assert resource["Properties"]["SecurityGroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    return logical_id, resource, group_id


def depends_on(resource: dict) -> set[str]:
    return set(resource.get("DependsOn", []))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_model_endpoints_go_before_the_drain_and_their_roles_and_group_after_it(templates, env):
    template = templates[f"{env}/Models"]
    drain_id, resource, group_id = drain(template)
    # The owners: each endpoint, or for an on-demand one (created by a run, deleted by the clean-up hook) its model.
    endpoints = template.find_resources("AWS::SageMaker::Endpoint") or template.find_resources("AWS::SageMaker::Model")
    assert endpoints
    for endpoint in endpoints.values():
        assert drain_id in depends_on(endpoint)
    # The execution roles and their policies (ec2:DeleteNetworkInterface among them) outlive the drain.
    execution_roles = {r for r in ids(template, "AWS::IAM::Role") if "ExecutionRole" in r}
    policies = {p for p in ids(template, "AWS::IAM::Policy") if "ExecutionRole" in p}
    assert len(execution_roles) == len(policies) == len(endpoints)
    # The group's egress rules that render as their own resources (the S3 prefix list) come with the group.
    egress = {
        e for e in ids(template, "AWS::EC2::SecurityGroupEgress") if e.startswith(group_id.split("SecurityGroup")[0])
    }
    assert depends_on(resource) == execution_roles | policies | {group_id} | egress


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_domain_goes_before_the_drain_and_its_group_after_it(templates, env):
    template = templates[f"{env}/VectorStore"]
    drain_id, resource, group_id = drain(template)
    (domain,) = template.find_resources("AWS::OpenSearchService::Domain").values()
    assert drain_id in depends_on(domain)
    assert group_id in depends_on(resource)


@pytest.mark.parametrize("stack", ["Models", "VectorStore"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_drain_only_lists_interfaces_and_gives_up_before_the_framework_and_cloudformation(templates, env, stack):
    template = templates[f"{env}/{stack}"]
    assert_least_privilege(template)
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
    ).values()
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
    }
    assert actions == {"ec2:DescribeNetworkInterfaces", "logs:CreateLogStream", "logs:PutLogEvents"}
    retry = waiter_retry(template)
    framework_minutes = retry["IntervalSeconds"] * retry["MaxAttempts"] / 60
    wait = int(function["Properties"]["Environment"]["Variables"]["RAGOPS_DRAIN_WAIT_MINUTES"])
    assert wait == 25 < framework_minutes == 30 < 60
