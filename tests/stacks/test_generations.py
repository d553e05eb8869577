"""A `retain` environment can be deployed again after a destroy: a new generation names nothing the old one kept."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.stacks.conftest import synth_environment


def retained_names(templates: dict[str, Template], *, retained_only: bool = True) -> dict[str, Any]:
    """Every explicit physical name (a `...Name` property) of a resource CloudFormation keeps on delete (or, with
    `retained_only=False`, of every resource).

    An inline IAM policy's name is not one: the registry schema of AWS::IAM::Policy says it is "embedded in the
    specified IAM group, user or role", so its name only has to be unique within roles (checked here to carry
    generated names, new with every deployment)."""
    names = {}
    for stack, template in templates.items():
        resources = template.to_json()["Resources"]
        for logical_id, resource in resources.items():
            if retained_only and resource.get("DeletionPolicy") != "Retain":
                continue
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Policy" and retained_only:
                assert not properties.get("Users")
                assert not properties.get("Groups")
                assert all("RoleName" not in role_properties(templates, stack, r) for r in properties["Roles"])
                continue
            for key, value in properties.items():
                if key.endswith("Name") and key != "KeyName":
                    names[f"{stack}/{logical_id}.{key}"] = value
    return names


def role_properties(templates: dict[str, Template], stack: str, reference: dict[str, Any]) -> dict[str, Any]:
    """The properties of the role a policy's `Roles` entry names: a `Ref` here, or another stack's output."""
    if "Fn::GetStackOutput" in reference:
        source = reference["Fn::GetStackOutput"]
        stack = source["StackName"].split("-", 1)[1]
        reference = templates[stack].to_json()["Outputs"][source["OutputName"]]["Value"]
    return templates[stack].to_json()["Resources"][reference["Ref"]]["Properties"]


def test_every_name_prod_retains_changes_with_the_generation(templates, tmp_path):
    first = retained_names({path.split("/")[1]: t for path, t in templates.items() if path.startswith("prod/")})
    kinds = {key.rsplit(".", 1)[1] for key in first}
    # The buckets, the domain, the tracking server and the endpoint log groups SageMaker writes to.
    assert {"BucketName", "DomainName", "TrackingServerName", "LogGroupName", "PolicyName"} <= kinds
    second = retained_names(synth_environment(tmp_path, "prod", {"generation": 2}))
    assert first.keys() == second.keys()
    assert not set(map(str, first.values())) & set(map(str, second.values()))
    assert all("ragops-prod-g2" in str(name) for name in second.values())


def test_the_next_generation_creates_nothing_under_a_name_the_kept_one_holds(templates, tmp_path):
    """Deploying prod again after a destroy: no resource of generation 2, kept or not, takes a name generation 1
    left behind, so no create collides with a kept bucket, domain, server, log group or log resource policy."""
    kept = retained_names({path.split("/")[1]: t for path, t in templates.items() if path.startswith("prod/")})
    created = retained_names(synth_environment(tmp_path, "prod", {"generation": 2}), retained_only=False)
    assert kept
    assert not set(map(str, kept.values())) & set(map(str, created.values()))
