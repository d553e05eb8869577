"""On-demand endpoints: staging's stack holds the models and endpoint configs only; its runs bring the endpoints up."""

from __future__ import annotations

import json

import pytest

from processing.pipelines.parameters import run_parameters
from stacks.config import ConfigError, load_app_config
from stacks.pricing import estimate, load_prices
from tests.stacks.conftest import ENVIRONMENTS, cdk_context
from tests.stacks.test_pipeline import ON_DEMAND, actions, definitions, policy_statements, render, resources

CONFIG = load_app_config(cdk_context())
FIELD_BY_PARAMETER = {p.name: p.field for p in run_parameters()}


def test_staging_is_the_environment_whose_endpoints_are_on_demand():
    assert {"staging"} == ON_DEMAND
    assert CONFIG.environments["staging"].models.llm.on_demand


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_on_demand_environment_has_models_and_configs_but_no_endpoint_or_scaling(templates, env):
    template = templates[f"{env}/Models"]
    configs = template.find_resources("AWS::SageMaker::EndpointConfig")
    assert len(template.find_resources("AWS::SageMaker::Model")) == len(configs) >= 1
    endpoints = template.find_resources("AWS::SageMaker::Endpoint")
    if env in ON_DEMAND:
        assert not endpoints
        assert not template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    else:
        assert len(endpoints) == len(configs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pipeline_creates_only_this_environments_on_demand_endpoints_tagged_for_the_clean_up(templates, env):
    by_action: dict[str, list[dict]] = {}
    for statement in policy_statements(templates[f"{env}/Pipeline"], "ExecutionPolicy"):
        for action in actions(statement):
            by_action.setdefault(action, []).append(statement)
    endpoint_tagging = [
        s for s in by_action.get("sagemaker:AddTags", []) if any(":endpoint/" in render(r) for r in resources(s))
    ]
    if env not in ON_DEMAND:
        assert not {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"} & set(by_action)
        assert not endpoint_tagging
        return
    (create,) = by_action["sagemaker:CreateEndpoint"]
    arns = [render(r) for r in resources(create)]
    endpoints = [a for a in arns if ":endpoint/" in a]
    expected = [f"endpoint/ragops-{env}-{role}" for role in ("embedding", "llm")]
    assert sorted(e.rsplit(":", 1)[1] for e in endpoints) == expected
    configs = [r for r in resources(create) if not isinstance(r, str) and "Fn::GetStackOutput" in json.dumps(r)]
    assert len(configs) == 2  # the Models stack's endpoint-config ARNs, nothing wider
    tags = {
        "aws:RequestTag/ragops:project": "ragops",
        "aws:RequestTag/ragops:environment": env,
        # the clean-up hook's positive ownership mark: no run can create an endpoint without it
        "aws:RequestTag/ragops:created-by": "processing.backends.on_demand",
    }
    assert create["Condition"] == {"StringEquals": tags}
    (tagging,) = endpoint_tagging
    assert all(":endpoint/" in render(r) for r in resources(tagging))
    assert tagging["Condition"]["StringEquals"] == tags
    assert tagging["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["ragops:project", "ragops:environment", "ragops:created-by"]
    }
    (update,) = by_action["sagemaker:UpdateEndpoint"]
    assert resources(update) == resources(create)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_runs_get_the_endpoint_configs_to_bring_up_and_the_environment_to_tag_with(templates, env):
    for definition in definitions(templates[f"{env}/Pipeline"]).values():
        defaults = {FIELD_BY_PARAMETER.get(p["Name"]): p["DefaultValue"] for p in definition["Parameters"]}
        on_demand = (defaults["sagemaker_embedding_endpoint_config"], defaults["generator_endpoint_config"])
        if env in ON_DEMAND:
            assert all(on_demand)  # the configs' generated names, resolved at deploy time
            assert defaults["environment_name"] == env
        else:
            assert on_demand == ("", "")
            assert defaults["environment_name"] == ""


def test_an_on_demand_endpoint_cannot_autoscale():
    context = cdk_context()
    context["ragops"]["environments"]["staging"]["models"]["llm"]["max_instances"] = 2
    with pytest.raises(ConfigError) as error:
        load_app_config(context)
    assert "ragops.environments.staging.models.llm" in str(error.value)
    assert "on_demand endpoints are created by a run and do not autoscale" in str(error.value)


def test_idle_staging_bills_no_endpoint_instance_and_the_table_names_the_hourly_price(templates):
    as_json = {path: template.to_json() for path, template in templates.items()}
    result = estimate(as_json, "staging", "us-east-1", load_prices())
    on_demand = [line for line in result.lines if not line.idle]
    assert sorted(line.key for line in on_demand) == [
        "sagemaker-inference/ml.g5.2xlarge",
        "sagemaker-inference/ml.g6.12xlarge",
    ]
    assert all(line.hourly and line.monthly for line in on_demand)
    idle_endpoints = [line for line in result.lines if line.idle and line.key.startswith("sagemaker-inference/")]
    assert not idle_endpoints
    assert result.total == pytest.approx(sum(line.monthly for line in result.lines if line.idle and line.monthly))
    assert result.total < sum(line.monthly for line in result.lines if line.monthly)
