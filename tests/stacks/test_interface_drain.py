"""Interface drains: CloudFormation deletes in reverse dependency order, so the endpoints (or the domain) depend
on the drain and the drain on the security group and the execution roles: owners first, then the drain's wait for
their interfaces, then what those interfaces needed."""

from __future__ import annotations

import pytest

from tests.stacks.conftest import ENVIRONMENTS, waiter_retry
from tests.stacks.iam_checks import as_list, assert_least_privilege

DRAIN = "Custom::RagOpsInterfaceDrain"
DESTROYED = ("dev", "staging")  # the environments whose removal policy is destroy


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


@pytest.mark.parametrize("env", DESTROYED)
def test_the_domain_goes_before_the_drain_and_its_group_after_it(templates, env):
    """Where a destroy deletes the domain; prod keeps it with its group and subnets (tests/stacks/test_retention.py)."""
    template = templates[f"{env}/VectorStore"]
    drain_id, resource, group_id = drain(template)
    (domain,) = template.find_resources("AWS::OpenSearchService::Domain").values()
    assert drain_id in depends_on(domain)
    assert group_id in depends_on(resource)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_processing_jobs_interfaces_go_before_the_job_roles_ec2_permissions(templates, env):
    """The pipelines go first, then the drain waits for the jobs' interfaces in the network stack's workload group,
    then the job role's policy (ec2:DeleteNetworkInterface, which SageMaker uses to remove them) may go; the
    network stack, deleted after this one, then deletes the group without a DependencyViolation."""
    template = templates[f"{env}/Pipeline"]
    ((drain_id, resource),) = template.find_resources(DRAIN).items()
    pipelines = template.find_resources("AWS::SageMaker::Pipeline")
    assert len(pipelines) == 2
    assert all(drain_id in depends_on(pipeline) for pipeline in pipelines.values())
    (policy_id,) = (p for p in ids(template, "AWS::IAM::Policy") if p.startswith("ExecutionPolicy"))
    assert policy_id in depends_on(resource)
    statements = template.to_json()["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    assert any("ec2:DeleteNetworkInterface" in as_list(s["Action"]) for s in statements)
    group = resource["Properties"]["SecurityGroupId"]["Fn::GetStackOutput"]
    assert group["StackName"] == f"{env}-Network"
    assert group["OutputName"].startswith("PublishOutputFnGetAttWorkloadSecurityGroup")


@pytest.mark.parametrize(
    "path",
    [f"{env}/{stack}" for env in ENVIRONMENTS for stack in ("Models", "Pipeline")]
    + [f"{env}/VectorStore" for env in DESTROYED],
)
def test_the_drain_only_lists_interfaces_and_gives_up_before_the_framework_and_cloudformation(templates, path):
    template = templates[path]
    assert_least_privilege(template)
    (function,) = (
        f
        for logical_id, f in template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}}
        ).items()
        if logical_id.startswith("InterfaceDrain")
    )
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {
        action
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
    }
    assert actions == {"ec2:DescribeNetworkInterfaces", "logs:CreateLogStream", "logs:PutLogEvents"}
    retry = waiter_retry(template, "InterfaceDrain")
    framework_minutes = retry["IntervalSeconds"] * retry["MaxAttempts"] / 60
    wait = int(function["Properties"]["Environment"]["Variables"]["RAGOPS_DRAIN_WAIT_MINUTES"])
    assert wait == 25 < framework_minutes == 30 < 60
