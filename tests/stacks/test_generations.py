"""A `retain` environment can be deployed again after a destroy: a new generation names nothing the old one kept."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.stacks.conftest import synth_environment


def retained_names(templates: dict[str, Template]) -> dict[str, Any]:
    """Every explicit physical name (a `...Name` property) of a resource CloudFormation keeps on delete."""
    names = {}
    for stack, template in templates.items():
        for logical_id, resource in template.to_json()["Resources"].items():
            if resource.get("DeletionPolicy") != "Retain":
                continue
            for key, value in resource.get("Properties", {}).items():
                if key.endswith("Name") and key != "KeyName":
                    names[f"{stack}/{logical_id}.{key}"] = value
    return names


def test_every_name_prod_retains_changes_with_the_generation(templates, tmp_path):
    first = retained_names({path.split("/")[1]: t for path, t in templates.items() if path.startswith("prod/")})
    kinds = {key.rsplit(".", 1)[1] for key in first}
    # The buckets, the domain, the tracking server and the endpoint log groups SageMaker writes to.
    assert {"BucketName", "DomainName", "TrackingServerName", "LogGroupName"} <= kinds
    second = retained_names(synth_environment(tmp_path, "prod", {"generation": 2}))
    assert first.keys() == second.keys()
    assert not set(map(str, first.values())) & set(map(str, second.values()))
    assert all("ragops-prod-g2" in str(name) for name in second.values())
