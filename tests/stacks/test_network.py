"""Network stack: isolated subnets across the configured zones, endpoints, encrypted flow logs."""

from __future__ import annotations

import pytest

from stacks.network_stack import INTERFACE_ENDPOINTS

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


@pytest.mark.parametrize("env", ZONES)
def test_workload_security_group_admits_nothing_and_sends_only_https(templates, env):
    group = security_group(templates, env, "WorkloadSecurityGroup")
    assert "SecurityGroupIngress" not in group
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupEgress"]] == [("tcp", 443, 443)]


@pytest.mark.parametrize("env", ZONES)
def test_flow_logs_capture_all_traffic_into_an_encrypted_group_with_retention(templates, env):
    template = templates[f"{env}/Network"]
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert "KmsKeyId" in group["Properties"]
    assert group["Properties"]["RetentionInDays"] > 0


def test_default_security_group_is_restricted(templates):
    assert templates["dev/Network"].find_resources("Custom::VpcRestrictDefaultSG")
