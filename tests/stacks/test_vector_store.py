"""Vector store stack: FGAC with an IAM master, access policy naming two roles, encryption, TLS, logs, topology."""

from __future__ import annotations

import json
import re

import pytest

from tests.stacks.conftest import ENVIRONMENTS, waiter_retry
from tests.stacks.iam_checks import as_list, assert_least_privilege


def domain(templates, env: str) -> dict:
    (resource,) = templates[f"{env}/VectorStore"].find_resources("AWS::OpenSearchService::Domain").values()
    return resource


SLR = "OpenSearchServiceLinkedRole"  # the construct creating the role and waiting for it


def role_ids(templates, env: str) -> dict[str, str]:
    """The project's two roles (not the custom-resource functions')."""
    roles = templates[f"{env}/VectorStore"].find_resources("AWS::IAM::Role")
    return {
        ("operator" if "Operator" in logical_id else "pipeline"): logical_id
        for logical_id in roles
        if logical_id.startswith(("PipelineRole", "OperatorRole"))
    }


def slr_policy(template) -> dict:
    """The policy of the function that creates the service-linked role and waits for it."""
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"][0]["Ref"].startswith(f"{SLR}FunctionRole")
    ]
    return policy


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_engine_is_opensearch_2_19_with_in_place_upgrades(templates, env):
    resource = domain(templates, env)
    assert resource["Properties"]["EngineVersion"] == "OpenSearch_2.19"
    assert resource["UpdatePolicy"] == {"EnableVersionUpgrade": True}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_fine_grained_access_control_has_an_iam_master_and_no_internal_users(templates, env):
    security = domain(templates, env)["Properties"]["AdvancedSecurityOptions"]
    assert security["Enabled"] is True
    assert security["InternalUserDatabaseEnabled"] is False
    master = security["MasterUserOptions"]
    assert set(master) == {"MasterUserARN"}  # no master user name or password
    assert master["MasterUserARN"] == {"Fn::GetAtt": [role_ids(templates, env)["pipeline"], "Arn"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_access_policy_allows_http_only_to_the_pipeline_and_operator_roles(templates, env):
    (statement,) = domain(templates, env)["Properties"]["AccessPolicies"]["Statement"]
    ids = role_ids(templates, env)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "es:ESHttp*"
    principals = as_list(statement["Principal"]["AWS"])
    assert "*" not in principals
    assert principals == [{"Fn::GetAtt": [ids["pipeline"], "Arn"]}, {"Fn::GetAtt": [ids["operator"], "Arn"]}]
    assert statement["Resource"].endswith(f":domain/ragops-{env}/*")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_operator_role_requires_mfa_and_pipeline_role_is_for_sagemaker_without_policies(templates, env):
    template = templates[f"{env}/VectorStore"]
    roles = template.find_resources("AWS::IAM::Role")
    ids = role_ids(templates, env)
    (operator_trust,) = roles[ids["operator"]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert operator_trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    (pipeline_trust,) = roles[ids["pipeline"]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert pipeline_trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "Policies" not in roles[ids["pipeline"]]["Properties"]
    assert "ManagedPolicyArns" not in roles[ids["pipeline"]]["Properties"]
    # Only the custom-resource functions have policies here: the pipeline stack owns the pipeline role's.
    attached = {
        r["Ref"] for p in template.find_resources("AWS::IAM::Policy").values() for r in p["Properties"]["Roles"]
    }
    assert attached.isdisjoint(ids.values())
    assert all(r.startswith((SLR, "InterfaceDrain")) for r in attached)
    assert_least_privilege(template)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_encrypted_at_rest_with_the_project_key_node_to_node_and_https_tls_1_2(templates, env):
    props = domain(templates, env)["Properties"]
    assert props["EncryptionAtRestOptions"]["Enabled"] is True
    assert "Storage" in json.dumps(props["EncryptionAtRestOptions"]["KmsKeyId"])  # the storage stack's key
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert props["DomainEndpointOptions"]["TLSSecurityPolicy"].startswith("Policy-Min-TLS-1-2")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_app_slow_and_audit_logs_go_to_encrypted_groups_with_retention_via_one_native_policy(templates, env):
    template = templates[f"{env}/VectorStore"]
    publishing = domain(templates, env)["Properties"]["LogPublishingOptions"]
    assert set(publishing) == {"ES_APPLICATION_LOGS", "SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "AUDIT_LOGS"}
    assert all(option["Enabled"] for option in publishing.values())
    groups = template.find_resources("AWS::Logs::LogGroup")
    drained = env != "prod"  # prod keeps its domain: no interface drain (tests/stacks/test_retention.py)
    assert len(groups) == 5 + drained  # four domain logs, the service-linked role call's and the interface drain's
    assert all("KmsKeyId" in g["Properties"] and g["Properties"]["RetentionInDays"] > 0 for g in groups.values())
    (policy,) = template.find_resources("AWS::Logs::ResourcePolicy").values()
    document = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "es.amazonaws.com" in document
    assert "aws:SourceArn" in document
    custom = [r["Type"] for r in template.to_json()["Resources"].values() if r["Type"].startswith("Custom::")]
    # The service-linked role and the interface drain: no log-policy custom resource.
    assert sorted(custom) == ["Custom::RagOpsInterfaceDrain"] * drained + ["Custom::RagOpsServiceLinkedRole"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_domain_waits_until_the_service_linked_role_has_settled(templates, env):
    """The domain is created only after the role exists and has had time to propagate (lambda/service_linked_role),
    not right after CreateServiceLinkedRole returns; the wait is bounded and nothing is deleted with the stack."""
    template = templates[f"{env}/VectorStore"]
    ((slr_id, slr),) = template.find_resources("Custom::RagOpsServiceLinkedRole").items()
    assert slr["Properties"]["AWSServiceName"] == "opensearchservice.amazonaws.com"
    assert slr["Properties"]["RoleName"] == "AWSServiceRoleForAmazonOpenSearchService"
    assert slr_id in domain(templates, env)["DependsOn"]
    (function,) = (
        f
        for logical_id, f in template.find_resources("AWS::Lambda::Function").items()
        if logical_id.startswith(f"{SLR}Function")
    )
    variables = function["Properties"]["Environment"]["Variables"]
    settle, wait = int(variables["RAGOPS_SLR_SETTLE_SECONDS"]), int(variables["RAGOPS_SLR_WAIT_MINUTES"])
    retry = waiter_retry(template, SLR)
    assert 0 < settle < wait * 60 < retry["IntervalSeconds"] * retry["MaxAttempts"] < 3600
    statements = {
        ",".join(as_list(s["Action"])): s for s in slr_policy(template)["Properties"]["PolicyDocument"]["Statement"]
    }
    assert set(statements) == {"iam:CreateServiceLinkedRole", "iam:GetRole", "logs:CreateLogStream,logs:PutLogEvents"}
    create = statements["iam:CreateServiceLinkedRole"]
    assert create["Condition"] == {"StringEquals": {"iam:AWSServiceName": "opensearchservice.amazonaws.com"}}
    for action in ("iam:CreateServiceLinkedRole", "iam:GetRole"):
        assert re.fullmatch(
            r"arn:aws:iam::\d{12}:role/aws-service-role/opensearchservice\.amazonaws\.com/"
            r"AWSServiceRoleForAmazonOpenSearchService",
            statements[action]["Resource"],
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_domain_sits_in_isolated_subnets_behind_a_group_admitting_https_from_workloads_only(templates, env):
    template = templates[f"{env}/VectorStore"]
    props = domain(templates, env)["Properties"]
    zones = props["ClusterConfig"].get("ZoneAwarenessConfig", {}).get("AvailabilityZoneCount", 1)
    assert len(props["VPCOptions"]["SubnetIds"]) == zones
    (ingress,) = template.find_resources("AWS::EC2::SecurityGroupIngress").values()
    assert (ingress["Properties"]["FromPort"], ingress["Properties"]["ToPort"]) == (443, 443)
    assert "WorkloadSecurityGroup" in json.dumps(ingress["Properties"]["SourceSecurityGroupId"])
    (group,) = template.find_resources("AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gp3_volumes_sized_from_config(templates, env):
    sizes = {"dev": 20, "staging": 50, "prod": 100}
    ebs = domain(templates, env)["Properties"]["EBSOptions"]
    assert ebs == {"EBSEnabled": True, "VolumeType": "gp3", "VolumeSize": sizes[env]}


def test_prod_spans_three_zones_with_dedicated_masters_standby_and_is_retained(templates):
    resource = domain(templates, "prod")
    cluster = resource["Properties"]["ClusterConfig"]
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 3}
    assert cluster["DedicatedMasterEnabled"] is True
    assert cluster["DedicatedMasterCount"] == 3
    assert cluster["InstanceCount"] == 3
    assert cluster["MultiAZWithStandbyEnabled"] is True
    assert resource["DeletionPolicy"] == "Retain"
    for group in templates["prod/VectorStore"].find_resources("AWS::Logs::LogGroup").values():
        assert group["DeletionPolicy"] == "Retain"


def test_staging_keeps_a_quorum_with_three_nodes_in_three_zones_without_dedicated_masters(templates):
    cluster = domain(templates, "staging")["Properties"]["ClusterConfig"]
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 3}
    assert cluster["InstanceCount"] == 3  # any one node (or zone) can fail and two master-eligible nodes remain
    assert cluster["DedicatedMasterEnabled"] is False
    assert cluster["MultiAZWithStandbyEnabled"] is False


def test_dev_is_one_node_in_one_zone_and_destroyed(templates):
    resource = domain(templates, "dev")
    cluster = resource["Properties"]["ClusterConfig"]
    assert cluster["InstanceCount"] == 1
    assert cluster["ZoneAwarenessEnabled"] is False
    assert cluster["DedicatedMasterEnabled"] is False
    assert cluster["MultiAZWithStandbyEnabled"] is False
    assert resource["DeletionPolicy"] == "Delete"
