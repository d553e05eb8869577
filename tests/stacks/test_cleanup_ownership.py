"""What a stack owns is never the clean-up hook's: read from the synthesized templates and CloudFormation's schemas.

The hook's ownership rule is a positive mark (`ragops:created-by`, set by the run-time code that creates a
resource). These tests build the stacks' own SageMaker resources in moto with exactly the tags their templates
give them, run every mode of the hook over them, and check against the registry schema (cfn-lint's copy) that
the rule cannot lean on CloudFormation's system tags, which the one type the hook deletes, the endpoint, never
gets.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from botocore.stub import Stubber
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from moto import mock_aws

from processing.backends.on_demand import ON_DEMAND_CREATOR, OnDemandEndpoint
from tests.lambda_cleanup import (
    DELETE,
    NullSns,
    cleanup,
    environ,
    later,
    moto_clients,
    names,
    stack_in,
    use_moto_endpoint_config_arns,
)
from tests.stacks.conftest import ENVIRONMENTS

REGION = "us-east-1"
# What each delete the hook's role may make removes (the IAM action's resource type in CloudFormation's terms):
# run-time code creates endpoints only, on a stack's endpoint config.
DELETED_TYPE = {"sagemaker:DeleteEndpoint": "AWS::SageMaker::Endpoint"}
# The registry schema's `tagging.cloudFormationSystemTags` for that type (cfn-lint 1.58.0, us-east-1): an endpoint
# never carries `aws:cloudformation:stack-name`, so no rule may look for it there.
SYSTEM_TAGS = {"AWS::SageMaker::Endpoint": False}
inventory = sys.modules[cleanup.Clients.__module__]  # the hook's own module, as its handler imported it


def _name(value: Any) -> str:
    """A literal name, or the logical id a Ref/GetAtt points at (stands in for the name CloudFormation generates)."""
    if isinstance(value, str):
        return value
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def _tags(resource: dict[str, Any]) -> list[dict[str, str]]:
    tags = resource["Properties"].get("Tags", [])
    assert all(isinstance(t["Key"], str) and isinstance(t["Value"], str) for t in tags), tags
    return tags


def _stack_resources(templates: dict[str, Template], env: str, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, template in templates.items():
        if path.startswith(f"{env}/"):
            yield from template.find_resources(f"AWS::SageMaker::{kind}").items()


def _build_stack_resources(clients, templates: dict[str, Template], env: str) -> dict[str, set[str]]:
    """Every SageMaker model, endpoint config, endpoint and pipeline of `env`'s templates, tagged exactly as there
    (moto has no MLflow tracking server; the hook's role can delete none: the schema test below)."""
    sagemaker = clients.sagemaker
    built: dict[str, set[str]] = {"models": set(), "configs": set(), "endpoints": set(), "pipelines": set()}
    for logical_id, model in _stack_resources(templates, env, "Model"):
        image = model["Properties"]["PrimaryContainer"]["Image"]
        role = f"arn:aws:iam::123456789012:role/{logical_id}"
        sagemaker.create_model(
            ModelName=logical_id, ExecutionRoleArn=role, PrimaryContainer={"Image": image}, Tags=_tags(model)
        )
        built["models"].add(logical_id)
    for logical_id, config in _stack_resources(templates, env, "EndpointConfig"):
        variants = [
            {
                "VariantName": v["VariantName"],
                "ModelName": _name(v["ModelName"]),
                "InitialInstanceCount": v["InitialInstanceCount"],
                # moto 5.2.5 knows an older list of instance types (no c6i, g5, g6); the type decides no ownership
                "InstanceType": "ml.m5.large",
            }
            for v in config["Properties"]["ProductionVariants"]
        ]
        sagemaker.create_endpoint_config(EndpointConfigName=logical_id, ProductionVariants=variants, Tags=_tags(config))
        built["configs"].add(logical_id)
    for _, endpoint in _stack_resources(templates, env, "Endpoint"):
        props = endpoint["Properties"]
        name = props["EndpointName"]
        sagemaker.create_endpoint(
            EndpointName=name, EndpointConfigName=_name(props["EndpointConfigName"]), Tags=_tags(endpoint)
        )
        built["endpoints"].add(name)
    for _, pipeline in _stack_resources(templates, env, "Pipeline"):
        name = pipeline["Properties"]["PipelineName"]
        # The definition is a deploy-time string; the hook reads only the pipeline's tags and its executions.
        sagemaker.create_pipeline(
            PipelineName=name,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=f"arn:aws:iam::123456789012:role/{name}",
            Tags=_tags(pipeline),
        )
        built["pipelines"].add(name)
    assert built["models"], f"{env}: the templates hold no SageMaker model to test with"
    assert built["configs"], f"{env}: the templates hold no endpoint config to test with"
    return built


def _run_time_endpoint(clients, env: str, config: str) -> str:
    """An endpoint as a run creates it (processing/backends/on_demand.py's tags): the hook must delete this one."""
    endpoint = OnDemandEndpoint(f"ragops-{env}-created-by-a-run", config, env)
    if endpoint.name not in names(clients)["endpoints"]:
        clients.sagemaker.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=config, Tags=endpoint.tags)
    return endpoint.name


def _settings(env: str, dry_run: bool):
    return cleanup.Settings.from_environ(environ(RAGOPS_ENVIRONMENT=env, RAGOPS_DRY_RUN=str(dry_run).lower()))


def _every_mode(clients, env: str, probe) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each mode of the hook, long after every idle TTL, with the reports it produced (returned or published)."""
    now = later(24 * 365)
    for label, event in (
        ("scheduled, dry run", {"mode": "scheduled", "dry_run": True}),
        ("scheduled", {"mode": "scheduled"}),
        ("manual delete, dry run", {"mode": "delete", "dry_run": True}),
        ("manual delete", {"mode": "delete"}),
    ):
        probe()
        yield label, [cleanup.clean_up(event, _settings(env, False), clients, now)]
    for label, dry_run in (("stack delete, dry run", True), ("stack delete", False)):
        probe()
        sns = NullSns()
        stack = dataclasses.replace(clients, sns=sns, cloudformation=stack_in("DELETE_IN_PROGRESS"))
        answer = cleanup.clean_up(DELETE, _settings(env, dry_run), stack, now)
        polls = 0
        while cleanup.clean_up({**DELETE, **answer}, _settings(env, False), stack, now) != {"IsComplete": True}:
            polls += 1
            assert polls < 5, f"{env}: the stack delete never completed"
        yield label, [json.loads(message["Message"]) for message in sns.messages]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_mode_of_the_hook_touches_what_the_templates_create(templates, env, monkeypatch):
    use_moto_endpoint_config_arns(monkeypatch)
    with mock_aws():
        clients = moto_clients()
        owned = _build_stack_resources(clients, templates, env)
        config = sorted(owned["configs"])[0]
        run_created: list[str] = []

        def probe() -> None:
            run_created.append(_run_time_endpoint(clients, env, config))

        for mode, reports in _every_mode(clients, env, probe):
            cleanup.metrics.clear_metrics()  # what Powertools' log_metrics does after each invocation
            pipelines = clients.sagemaker.list_pipelines()["PipelineSummaries"]
            left = {**names(clients), "pipelines": {p["PipelineName"] for p in pipelines}}
            for kind, built in owned.items():
                assert built <= left[kind], f"{env} {mode}: deleted {kind} {sorted(built - left[kind])}"
            touched = {a["name"] for report in reports for a in report["actions"]}
            assert not touched & set().union(*owned.values()), f"{env} {mode}: acted on {touched}"
            if "dry run" not in mode:  # the hook does act here: on what a run created
                assert run_created[-1] not in left["endpoints"], f"{env} {mode}: the run's endpoint was kept"


def _schema_tagging(resource_type: str) -> dict[str, Any]:
    return PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema["tagging"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ownership_rule_keys_on_the_creator_tag_never_on_cloudformation_system_tags(templates, env):
    """For every type the hook's role may delete: the registry schema's system-tag fact is as documented, and
    neither the IAM condition nor the hook's selection depends on it."""
    policies = templates[f"{env}/Operations"].find_resources("AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {id(s): [s["Action"]] if isinstance(s["Action"], str) else s["Action"] for s in statements}
    assert {a for listed in actions.values() for a in listed if a.startswith("sagemaker:Delete")} <= set(DELETED_TYPE)
    deletes = [s for s in statements if any(a in DELETED_TYPE for a in actions[id(s)])]  # no MLflow, no pipeline
    assert deletes, f"{env}: the clean-up role deletes nothing"
    deleted_types = {DELETED_TYPE[a] for s in deletes for a in actions[id(s)]}
    assert {t: _schema_tagging(t)["cloudFormationSystemTags"] for t in deleted_types} == SYSTEM_TAGS
    for statement in deletes:
        condition = statement["Condition"]
        keys = {key for operator in condition.values() for key in operator}
        assert not any("aws:cloudformation" in key for key in keys), condition
        assert set(condition) == {"StringEquals"}, condition  # a positive match, no Null (absence) test
        assert condition["StringEquals"]["aws:ResourceTag/ragops:created-by"] == [ON_DEMAND_CREATOR]

    # The hook's own selection, on the Resource Groups Tagging API's answer (botocore Stubber): an endpoint with
    # this environment's tags, with or without CloudFormation's stack-name tag, is the hook's only when it carries
    # a creator's tag; an endpoint config or a model never is, even with one (tagged by hand: the API was not
    # asked for them).
    base = {"ragops:project": "ragops", "ragops:environment": env}
    variants = {
        "stack": {},
        "stack-with-system-tag": {"aws:cloudformation:stack-name": f"{env}-Models"},
        "run": {inventory.CREATED_BY_TAG: ON_DEMAND_CREATOR},
        "run-with-system-tag": {inventory.CREATED_BY_TAG: ON_DEMAND_CREATOR, "aws:cloudformation:stack-name": "x"},
    }
    mappings = [
        {
            "ResourceARN": f"arn:aws:sagemaker:{REGION}:123456789012:{kind}/{variant}",
            "Tags": [{"Key": k, "Value": v} for k, v in {**base, **extra}.items()],
        }
        for kind in ("endpoint", "endpoint-config", "model")
        for variant, extra in variants.items()
    ]
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    with Stubber(tagging) as stub:
        stub.add_response("get_resources", {"ResourceTagMappingList": mappings})
        found = inventory.find_tagged(tagging, env)
    assert {arn.rsplit("/", 1)[1] for arn in found.of("sagemaker:endpoint")} == {"run", "run-with-system-tag"}
    assert found.of("sagemaker:endpoint-config") == found.of("sagemaker:model") == {}
