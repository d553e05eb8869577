"""Network stack: isolated subnets across the configured zones, endpoints, encrypted flow logs."""

from __future__ import annotations

import json

import pytest

from stacks.config import load_app_config
from stacks.network_stack import INTERFACE_ENDPOINTS
from tests.stacks.conftest import cdk_context
from tests.stacks.iam_checks import as_list

CONFIG = load_app_config(cdk_context())

ZONES = {"dev": 2, "staging": 3, "prod": 3}


@pytest.mark.parametrize(("env", "zones"), ZONES.items())
def test_one_isolated_subnet_per_configured_zone(templates, env, zones):
    template = templates[f"{env}/Network"]
    subnets = template.find_resources("AWS::EC2::Subnet")
    assert len(subnets) == zones
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)


@pytest.mark.parametrize("env", ZONES)
def test_subnets_are_placed_by_az_id_not_by_the_per_account_zone_name(templates, env):
    """AZ names map to different physical zones in each account; the configured IDs are what the subnets get (the
    zones docs/fresh-account.md checks against each endpoint service's AvailabilityZoneIds)."""
    subnets = templates[f"{env}/Network"].find_resources("AWS::EC2::Subnet").values()
    assert all("AvailabilityZone" not in s["Properties"] for s in subnets)
    assert sorted(s["Properties"]["AvailabilityZoneId"] for s in subnets) == sorted(
        CONFIG.environments[env].network.availability_zone_ids
    )


@pytest.mark.parametrize("env", ZONES)
def test_s3_gateway_and_every_interface_endpoint_with_private_dns(templates, env):
    endpoints = templates[f"{env}/Network"].find_resources("AWS::EC2::VPCEndpoint")
    kinds = [e["Properties"].get("VpcEndpointType", "Gateway") for e in endpoints.values()]
    assert kinds.count("Gateway") == 1
    interfaces = [e["Properties"] for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Interface"]
    assert len(interfaces) == len(INTERFACE_ENDPOINTS)
    assert all(p["PrivateDnsEnabled"] for p in interfaces)


def security_group(templates, env: str, logical_prefix: str) -> dict:
    groups = templates[f"{env}/Network"].find_resources("AWS::EC2::SecurityGroup")
    (group,) = [g for logical_id, g in groups.items() if logical_id.startswith(logical_prefix)]
    return group["Properties"]


@pytest.mark.parametrize("env", ZONES)
def test_endpoint_security_group_admits_only_https_from_the_vpc(templates, env):
    ingress = security_group(templates, env, "EndpointSecurityGroup")["SecurityGroupIngress"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in ingress] == [("tcp", 443, 443)]
    assert ingress[0]["CidrIp"].startswith("10.")


@pytest.mark.parametrize(
    ("env", "stack", "group"),
    [(env, "Network", "WorkloadSecurityGroup") for env in ZONES]
    + [(env, "Models", "ModelSecurityGroup") for env in ZONES],
)
def test_workloads_send_https_only_to_the_vpc_and_the_s3_prefix_list(templates, env, stack, group):
    template = templates[f"{env}/{stack}"]
    ((group_id, group_resource),) = [
        item for item in template.find_resources("AWS::EC2::SecurityGroup").items() if item[0].startswith(group)
    ]
    props = group_resource["Properties"]
    assert "SecurityGroupIngress" not in props
    # Rules naming a deploy-time value (the prefix list) render as their own resources.
    separate = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    egress = props["SecurityGroupEgress"] + separate
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in egress] == [("tcp", 443, 443)] * 2
    assert "0.0.0.0/0" not in json.dumps(egress)
    assert [r["CidrIp"] for r in egress if "CidrIp" in r] == [CONFIG.environments[env].network.cidr]
    (prefix_list,) = [r["DestinationPrefixListId"] for r in egress if "DestinationPrefixListId" in r]
    assert "S3PrefixList" in json.dumps(prefix_list)


@pytest.mark.parametrize("env", ZONES)
def test_the_s3_prefix_list_is_looked_up_at_deploy_time_by_its_regional_name(templates, env):
    (lookup,) = templates[f"{env}/Network"].find_resources("Custom::AWS").values()
    call = json.loads(lookup["Properties"]["Update"])
    assert call["action"] == "describeManagedPrefixLists"
    assert call["parameters"]["Filters"] == [{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}]


def endpoint_policies(templates, env: str) -> dict[str, dict]:
    """Policy document per endpoint, keyed by service name (the last part of com.amazonaws.<region>.<service>)."""
    found = {}
    for endpoint in templates[f"{env}/Network"].find_resources("AWS::EC2::VPCEndpoint").values():
        name = json.dumps(endpoint["Properties"]["ServiceName"])
        service = "s3" if endpoint["Properties"].get("VpcEndpointType", "Gateway") == "Gateway" else name
        found[service] = endpoint["Properties"]["PolicyDocument"]
    return found


@pytest.mark.parametrize("env", ZONES)
def test_interface_endpoints_admit_only_this_accounts_principals_and_the_actions_our_roles_use(templates, env):
    account = CONFIG.environments[env].account
    interfaces = {k: v for k, v in endpoint_policies(templates, env).items() if k != "s3"}
    assert len(interfaces) == len(INTERFACE_ENDPOINTS)
    for service, document in interfaces.items():
        (statement,) = document["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}, service
        assert all(a != "*" and not a.endswith(":*") for a in as_list(statement["Action"])), service
        if "experiments" in service:
            assert statement["Resource"] == f"arn:aws:sagemaker:us-east-1:{account}:mlflow-tracking-server/*"
            # the trace actions SageMaker documents for MLflow tracing (stacks/service_actions.py): without them
            # the endpoint drops every agent trace while runs and metrics still arrive; named here, not read from
            # the constant the stack uses, so that emptying it fails this test
            trace_actions = {f"sagemaker-mlflow:{a}" for a in ("StartTrace", "EndTrace", "SearchTraces")}
            assert trace_actions <= set(as_list(statement["Action"]))


@pytest.mark.parametrize("env", ZONES)
def test_s3_gateway_reaches_only_the_project_buckets_jumpstart_and_ecr_layers(templates, env):
    config = CONFIG.environments[env]
    document = endpoint_policies(templates, env)["s3"]
    buckets = {
        resource.split(":::")[1].split("/")[0]
        for statement in document["Statement"]
        for resource in as_list(statement["Resource"])
    }
    assert buckets == {
        f"{config.resource_prefix}-data-{config.account}-us-east-1",
        f"{config.resource_prefix}-artifacts-{config.account}-us-east-1",
        "jumpstart-cache-prod-us-east-1",
        "prod-us-east-1-starport-layer-bucket",
    }
    for statement in document["Statement"]:
        assert all(not a.endswith("*") for a in as_list(statement["Action"]))
        if "starport" in json.dumps(statement) or "jumpstart" in json.dumps(statement):
            assert set(as_list(statement["Action"])) <= {"s3:GetObject", "s3:ListBucket"}  # read-only


@pytest.mark.parametrize("env", ZONES)
def test_flow_logs_capture_all_traffic_into_an_encrypted_group_with_retention(templates, env):
    template = templates[f"{env}/Network"]
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    groups = template.find_resources("AWS::Logs::LogGroup").values()
    # The flow logs, the prefix-list lookup's function log and the default-group restriction provider's.
    assert len(groups) == 3
    assert all("KmsKeyId" in g["Properties"] and g["Properties"]["RetentionInDays"] > 0 for g in groups)


def test_default_security_group_is_restricted(templates):
    assert templates["dev/Network"].find_resources("Custom::VpcRestrictDefaultSG")
