"""Environment config: the committed values load, and every kind of bad value is named precisely."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, load_app_config, selected_environments

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def with_value(context: dict[str, Any], env: str, dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(context)
    node = changed["ragops"]["environments"][env]
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return changed


DELETE = object()


def test_committed_environments_load_in_promotion_order(context):
    config = load_app_config(context)
    assert list(config.environments) == ["dev", "staging", "prod"]
    assert config.environments["dev"].promotion.next_environment == "staging"
    assert config.environments["staging"].promotion.next_environment == "prod"
    assert config.environments["prod"].promotion.next_environment is None


def test_removal_policy_differs_between_dev_and_prod(context):
    config = load_app_config(context)
    assert config.environments["dev"].destroy_on_delete
    assert not config.environments["prod"].destroy_on_delete


@pytest.mark.parametrize(
    ("env", "key", "value", "expected"),
    [
        ("dev", "account", DELETE, "ragops.environments.dev.account: Field required"),
        ("dev", "account", "12345", "ragops.environments.dev.account"),
        ("staging", "region", "Mars-1", "ragops.environments.staging.region"),
        ("prod", "opensearch.instance_count", 0, "ragops.environments.prod.opensearch.instance_count"),
        (
            "dev",
            "models.embedding.instance_type",
            "c6i.xlarge",
            "ragops.environments.dev.models.embedding.instance_type",
        ),
        ("dev", "opensearch.instance_type", "m7g.large", "ragops.environments.dev.opensearch.instance_type"),
        ("prod", "processing.instance_count", -1, "ragops.environments.prod.processing.instance_count"),
        ("dev", "promotion.thresholds", {"mrr": 1.5}, "ragops.environments.dev.promotion.thresholds.mrr"),
        ("dev", "promotion.thresholds", {"mrr": -0.1}, "ragops.environments.dev.promotion.thresholds.mrr"),
        ("dev", "removal_policy", "snapshot", "ragops.environments.dev.removal_policy"),
        ("dev", "log_retention_days", 13, "ragops.environments.dev.log_retention_days"),
        ("dev", "network.availability_zone_ids", ["us-east-1a", "us-east-1b"], "is not an AZ ID such as use1-az1"),
        ("dev", "network.availability_zone_ids", ["use1-az1", "euw1-az1"], "are not all zones of one region"),
        ("dev", "network.availability_zone_ids", ["use1-az1", "use1-az1"], "names a zone twice"),
        ("dev", "opensearch.engine_version", "OpenSearch_2.11", "ragops.environments.dev.opensearch.engine_version"),
        ("prod", "opensearch.dedicated_master_count", 2, "dedicated_master_count must be 0, 3 or 5"),
        ("dev", "cleanup.endpoint_idle_ttl_hours", 0, "ragops.environments.dev.cleanup.endpoint_idle_ttl_hours"),
        ("dev", "tracking.weekly_maintenance_window", "Sunday 3am", "tracking.weekly_maintenance_window"),
        ("dev", "unknown_knob", 1, "ragops.environments.dev.unknown_knob: Extra inputs are not permitted"),
        ("dev", "promotion.next_environment", "qa", "promotion.next_environment 'qa' is not defined"),
        ("dev", "tracking.mlflow_version", "2.20.0", "ragops.environments.dev.tracking.mlflow_version"),
        ("dev", "opensearch.multi_az_with_standby", True, "multi_az_with_standby needs zone_awareness_azs 3"),
        ("dev", "opensearch.instance_count", 2, "instance_count 2 without dedicated masters loses its"),
        ("dev", "notifications.email_addresses", ["ops at example.org"], "notifications.email_addresses.0"),
        ("dev", "processing.index_retention_hours", 7, "index_retention_hours (7) must be at least cleanup.pipeline_e"),
        ("dev", "processing.generation_concurrency", 0, "ragops.environments.dev.processing.generation_concurrency"),
        ("prod", "processing.max_runtime_seconds", 500000, "ragops.environments.prod.processing.max_runtime_seconds"),
        ("prod", "generation", 0, "ragops.environments.prod.generation"),
        ("prod", "generation", 10, "ragops.environments.prod.generation"),
        (
            "prod",
            "models.llm.model_data_download_timeout_seconds",
            30,
            "ragops.environments.prod.models.llm.model_data_download_timeout_seconds",
        ),
    ],
)
def test_bad_values_name_environment_and_key(context, env, key, value, expected):
    with pytest.raises(ConfigError) as error:
        load_app_config(with_value(context, env, key, value))
    assert expected in str(error.value)
    if "environment" not in expected:
        assert f"'{env}'" in str(error.value)


def test_index_retention_defaults_to_the_longest_an_execution_can_run_and_may_be_longer(context):
    dev = load_app_config(context).environments["dev"]
    assert dev.index_retention_hours == 6 + 2  # pipeline_execution_ttl_hours + schedule_rate_hours
    longer = load_app_config(with_value(context, "dev", "processing.index_retention_hours", 48)).environments["dev"]
    assert longer.index_retention_hours == 48


def test_a_later_generation_renames_everything_named_from_the_prefix_but_not_the_pipelines(context):
    prod = load_app_config(with_value(context, "prod", "generation", 2)).environments["prod"]
    assert prod.resource_prefix == "ragops-prod-g2"
    assert load_app_config(context).environments["prod"].resource_prefix == "ragops-prod"


def test_a_generation_whose_bucket_names_would_not_fit_is_refused_naming_the_bucket(context):
    long_name = "abcdefghijklmnop"  # 16 characters, the longest environment name
    changed = copy.deepcopy(context)
    env = copy.deepcopy(changed["ragops"]["environments"]["dev"])
    env.update(region="ap-southeast-2", generation=2)
    env["network"]["availability_zone_ids"] = ["apse2-az1", "apse2-az2"]
    changed["ragops"]["environments"] = {long_name: {**env, "promotion": {"thresholds": {"mrr": 0.5}}}}
    with pytest.raises(ConfigError, match=r"name/generation: bucket name 'ragops-abcdefghijklmnop-g2-artifacts-.*64"):
        load_app_config(changed)
    env["generation"] = 1
    changed["ragops"]["environments"][long_name] = {**env, "promotion": {"thresholds": {"mrr": 0.5}}}
    assert load_app_config(changed).environments[long_name].resource_prefix == f"ragops-{long_name}"


def test_endpoint_capacity_must_be_ordered(context):
    bad = with_value(context, "prod", "models.llm.min_instances", 5)
    with pytest.raises(ConfigError, match=r"prod.*models\.llm.*min_instances <= initial_instance_count"):
        load_app_config(bad)


def test_the_llm_answer_budget_defaults_for_a_reasoning_model_and_its_retry_must_be_larger(context):
    llm = load_app_config(context).environments["dev"].models.llm
    assert (llm.max_answer_tokens, llm.reasoning_retry_max_tokens) == (1024, 2048)  # R1 reasons before answering
    bad = with_value(context, "prod", "models.llm.reasoning_retry_max_tokens", 1024)
    with pytest.raises(ConfigError, match=r"prod.*models\.llm.*reasoning_retry_max_tokens must be 0 \(no retry\)"):
        load_app_config(bad)


def test_missing_ragops_block_is_named():
    with pytest.raises(ConfigError, match=r"ragops\.environments"):
        load_app_config({})


@pytest.mark.parametrize("chosen", ["qa", "dev,qa", " , "])
def test_unknown_selected_environment_is_named(context, chosen):
    config = load_app_config(context)
    with pytest.raises(ConfigError, match="'environments'"):
        selected_environments({**context, "environments": chosen}, config)


def test_environment_selection_keeps_the_given_order(context):
    config = load_app_config(context)
    chosen = selected_environments({**context, "environments": "prod,dev"}, config)
    assert [env.name for env in chosen] == ["prod", "dev"]


def test_app_exits_non_zero_naming_the_key_for_an_unknown_environment(context, tmp_path):
    """What `cdk synth -c environments=qa` runs: the app itself, with the CLI's context."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({**context, "environments": "qa"}), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2
    assert "context key 'environments': unknown environment(s) qa" in result.stderr


def with_cicd(context: dict[str, Any], **values: Any) -> dict[str, Any]:
    changed = copy.deepcopy(context)
    changed["ragops"]["cicd"] = {**changed["ragops"]["cicd"], **values}
    return changed


def test_committed_cicd_block_defaults_the_subject_to_the_repository(context):
    cicd = load_app_config(context).cicd
    assert cicd is not None
    assert cicd.subject == f"repo:{cicd.github_owner}/{cicd.github_repo}"
    assert cicd.bootstrap_qualifier == "hnb659fds"


def test_immutable_subject_prefix_is_accepted(context):
    prefix = "repo:example-org@123456/ragops-on-aws@789012"
    assert load_app_config(with_cicd(context, subject_prefix=prefix)).cicd.subject == prefix


def test_cicd_block_is_optional(context):
    changed = copy.deepcopy(context)
    del changed["ragops"]["cicd"]
    assert load_app_config(changed).cicd is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"github_owner": "bad owner"}, "ragops.cicd.github_owner"),
        ({"github_owner": "-leading-dash"}, "ragops.cicd.github_owner"),
        ({"github_repo": "a/b"}, "ragops.cicd.github_repo"),
        ({"github_repo": ".."}, "ragops.cicd.github_repo"),
        ({"bootstrap_qualifier": "far-too-long-qualifier"}, "ragops.cicd.bootstrap_qualifier"),
        ({"subject_prefix": "repo:other-org/ragops-on-aws"}, "ragops.cicd: Value error, subject_prefix"),
        ({"subject_prefix": "repo:example-org/*"}, "ragops.cicd: Value error, subject_prefix"),
        ({"subject_prefix": "repo:example-org/ragops-on-aws:environment:prod"}, "subject_prefix"),
        ({"unknown": 1}, "ragops.cicd.unknown: Extra inputs are not permitted"),
    ],
)
def test_bad_cicd_values_name_the_key(context, values, expected):
    with pytest.raises(ConfigError) as error:
        load_app_config(with_cicd(context, **values))
    assert expected in str(error.value)


def test_missing_cicd_key_and_non_object_block_are_named(context):
    changed = copy.deepcopy(context)
    del changed["ragops"]["cicd"]["github_repo"]
    with pytest.raises(ConfigError, match=r"ragops\.cicd\.github_repo: Field required"):
        load_app_config(changed)
    changed["ragops"]["cicd"] = "example-org/ragops-on-aws"
    with pytest.raises(ConfigError, match=r"'ragops\.cicd' must be an object"):
        load_app_config(changed)
