"""The idle cost estimate, on the session's real templates (no second synthesis), and the committed price table."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks import cost
from stacks.config import CDK_JSON, committed_context, load_app_config
from stacks.jumpstart.catalog import load_catalog
from stacks.network_stack import INTERFACE_ENDPOINTS
from stacks.operations_stack import CLEANUP_METRICS
from stacks.pricing import PRICES, Estimate, PriceTable, estimate, load_prices
from tests.lambda_cleanup import cleanup as cleanup_handler

REGION = "us-east-1"  # every committed environment's region

# Prices no source consulted gave for a region the committed config deploys to (see stacks/prices.json's note):
# the coverage test fails when a new gap appears, and when one of these is filled without being removed here.
KNOWN_GAPS: dict[str, set[str]] = {"us-east-1": set()}


@pytest.fixture(scope="module")
def stacks_json(templates: dict[str, Template]) -> dict[str, dict[str, Any]]:
    return {path: template.to_json() for path, template in templates.items()}


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices()


def idle(stacks_json: dict[str, dict[str, Any]], env: str, prices: PriceTable, region: str = REGION) -> Estimate:
    return estimate(stacks_json, env, region, prices)


def lines_for(result: Estimate, prefix: str) -> dict[str, Any]:
    """{resource path: line} of the lines whose price key starts with `prefix`."""
    return {line.path: line for line in result.lines if line.key.startswith(prefix)}


def test_dev_prices_the_embedder_only(stacks_json, prices):
    endpoints = lines_for(idle(stacks_json, "dev", prices), "sagemaker-inference/")
    assert [line.key for line in endpoints.values()] == ["sagemaker-inference/ml.c6i.xlarge"]
    assert [line.quantity for line in endpoints.values()] == [1]


def test_endpoint_counts_are_the_autoscaling_minimum(stacks_json, prices):
    endpoints = lines_for(idle(stacks_json, "prod", prices), "sagemaker-inference/")
    counts = {path.rsplit("/", 1)[1]: (line.key, line.quantity) for path, line in endpoints.items()}
    assert counts == {
        "EmbeddingEndpoint0EDDDDCD": ("sagemaker-inference/ml.g5.2xlarge", 2),
        "LlmEndpoint0550A83E": ("sagemaker-inference/ml.g6.12xlarge", 1),
    }
    assert all("autoscaling min" in line.what for line in endpoints.values())


def _prod_models(stacks_json: dict[str, dict[str, Any]], initial: int, minimum: int | None) -> dict[str, Any]:
    """prod with the embedding endpoint's initial count and autoscaling floor changed (None: no scalable target)."""
    changed = copy.deepcopy(stacks_json)
    resources = changed["prod/Models"]["Resources"]
    resources["EmbeddingConfig6B4108AA"]["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] = initial
    if minimum is None:
        del resources["EmbeddingScalableTargetA2D1F869"]
    else:
        resources["EmbeddingScalableTargetA2D1F869"]["Properties"]["MinCapacity"] = minimum
    return changed


@pytest.mark.parametrize(("initial", "minimum", "billed"), [(3, 2, 2), (2, 1, 1), (3, None, 3)])
def test_an_idle_endpoint_bills_its_floor_not_its_initial_count(stacks_json, prices, initial, minimum, billed):
    result = idle(_prod_models(stacks_json, initial, minimum), "prod", prices)
    line = lines_for(result, "sagemaker-inference/ml.g5.2xlarge")["prod/Models/EmbeddingEndpoint0EDDDDCD"]
    assert line.quantity == billed
    assert line.monthly == pytest.approx(billed * 730 * line.price.usd)


@pytest.mark.parametrize(("env", "subnets"), [("dev", 2), ("staging", 3), ("prod", 3)])
def test_interface_endpoints_bill_once_per_subnet(stacks_json, prices, env, subnets):
    result = idle(stacks_json, env, prices)
    endpoints = lines_for(result, "vpc-interface-endpoint/")
    assert len(endpoints) == len(INTERFACE_ENDPOINTS)
    assert {line.quantity for line in endpoints.values()} == {subnets}
    assert not any("VpcS3" in line.path for line in result.lines)  # the S3 gateway endpoint has no hourly charge
    assert sum(line.monthly for line in endpoints.values()) == pytest.approx(
        len(INTERFACE_ENDPOINTS) * subnets * 730 * prices.get(REGION, "vpc-interface-endpoint/AZ-hour").usd
    )


def test_prod_domain_bills_data_nodes_masters_and_storage_per_data_node(stacks_json, prices):
    domain = [line for line in idle(stacks_json, "prod", prices).lines if line.key.startswith("opensearch")]
    assert [(line.key, line.quantity) for line in domain] == [
        ("opensearch/r7g.large.search", 3),
        ("opensearch/m7g.large.search", 3),
        ("opensearch-gp3/GiB-month", 300),
    ]


def test_a_missing_price_is_reported_and_not_counted_as_zero(stacks_json, prices):
    table = {region: dict(entries) for region, entries in prices.regions.items()}
    del table[REGION]["opensearch/m7g.large.search"]
    result = idle(stacks_json, "dev", PriceTable(prices.captured, table))
    (domain,) = lines_for(result, "opensearch/").values()
    assert domain.price is None
    assert domain.monthly is None
    assert (
        "dev/VectorStore/Domain66AC69E0: no price in stacks/prices.json for opensearch/m7g.large.search in us-east-1"
        in result.missing
    )
    assert result.total == pytest.approx(sum(line.monthly for line in result.lines if line.price is not None))


def test_no_region_borrows_another_regions_price(stacks_json, prices):
    result = idle(stacks_json, "dev", prices, region="ap-northeast-1")
    priced = {line.key for line in result.lines if line.price is not None}
    assert priced <= set(prices.regions["ap-northeast-1"])
    assert any(line.key == "opensearch/m7g.large.search" and line.price is None for line in result.lines)


def test_cli_prints_each_line_and_fails_on_a_missing_price(stacks_json, prices, monkeypatch, capsys):
    table = {region: dict(entries) for region, entries in prices.regions.items()}
    del table[REGION]["kms/key-month"]
    monkeypatch.setattr(cost, "load_prices", lambda: PriceTable(prices.captured, table))
    assert cost.main(["staging"], templates=lambda names: stacks_json) == 1
    out, err = capsys.readouterr()
    assert "staging/Storage/Key961B73FD" in out
    assert "no price in stacks/prices.json for kms/key-month in us-east-1" in out
    assert "staging/VectorStore/Domain66AC69E0" in out
    assert "Not priced, because they depend on usage: S3 storage" in out
    assert "--allow-missing" in err
    assert cost.main(["staging", "--allow-missing"], templates=lambda names: stacks_json) == 0


def test_cli_refuses_an_unknown_environment_before_synthesizing(capsys):
    def never(names: list[str]) -> dict[str, Any]:
        raise AssertionError("synthesized for an unknown environment")

    assert cost.main(["dev", "qa"], templates=never) == 2
    assert "unknown environment(s) qa; defined: dev, staging, prod" in capsys.readouterr().err


def test_every_price_has_a_source_and_the_table_a_date():
    raw = json.loads(PRICES.read_text())
    datetime.date.fromisoformat(raw["captured"])
    assert raw["note"]
    regions = {region for model in load_catalog().models.values() for region in model.regions}
    assert set(raw["regions"]) == regions
    for region, entries in raw["regions"].items():
        for key, entry in entries.items():
            assert entry["usd"] > 0, (region, key)
            assert entry["per"].endswith(("-hour", "-month")), (region, key)
            assert entry["source"].startswith("https://aws.amazon.com/"), (region, key)
            assert entry["seen_at"], (region, key)


def test_table_covers_what_the_committed_config_deploys_in_its_region(prices):
    needed: dict[str, set[str]] = {}
    for env in load_app_config(committed_context()).environments.values():
        keys = needed.setdefault(env.region, set())
        keys |= {f"sagemaker-inference/{m.instance_type}" for m in (env.models.embedding, env.models.llm) if m.enabled}
        keys |= {f"opensearch/{env.opensearch.instance_type}", "opensearch-gp3/GiB-month"}
        if env.opensearch.dedicated_master_count:
            keys.add(f"opensearch/{env.opensearch.dedicated_master_type}")
        keys |= {f"mlflow/{env.tracking.server_size}", "vpc-interface-endpoint/AZ-hour", "kms/key-month"}
    gaps = {region: keys - set(prices.regions.get(region, {})) for region, keys in needed.items()}
    assert gaps == KNOWN_GAPS


def test_the_cost_page_shows_what_the_command_prints_for_the_committed_config(stacks_json, capsys):
    page = (CDK_JSON.parent / "docs" / "cost.md").read_text()
    shown = page.split("```text\n", 1)[1].split("\n```", 1)[0]
    cost.main(["--allow-missing"], templates=lambda names: stacks_json)
    assert capsys.readouterr().out.rstrip("\n") == shown


def test_the_committed_config_prices_every_line_and_the_cli_exits_0(stacks_json, capsys):
    assert cost.main([], templates=lambda names: stacks_json) == 0
    out, err = capsys.readouterr()
    assert "no price" not in out
    assert err == ""
    rows = out.splitlines()

    def row(path: str, what: str) -> str:
        (found,) = [r for r in rows if r.startswith(path) and what in r]
        return found

    assert row("dev/Models/Embedding", "SageMaker endpoint ml.c6i.xlarge").split()[-2:] == [
        "$0.204/instance-hour",
        "$148.92",
    ]
    assert "$0.60/server-hour" in row("dev/Tracking/Server", "MLflow tracking server Small")
    assert "$0.60/server-hour" in row("staging/Tracking/Server", "MLflow tracking server Small")
    assert "$1.04/server-hour" in row("prod/Tracking/Server", "MLflow tracking server Medium")
    for env, quantity in (("dev", "1.5"), ("staging", "3"), ("prod", "0.125")):
        metrics = row(f"{env}/Operations/CleanupFunction", "CloudWatch custom metrics RagOps x3")
        assert f"{quantity} metric-months" in metrics
        assert "$0.30/metric-month" in metrics


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_cleanup_hooks_custom_metrics_bill_for_the_hours_its_schedule_writes_them(stacks_json, prices, env):
    """Every scheduled pass writes the three clean-up metrics (zeros included); CloudWatch bills a custom metric
    by the hour it is written in, so a pass every N hours bills 3/N metric-months."""
    (line,) = lines_for(idle(stacks_json, env, prices), "cloudwatch/custom-metric-month").values()
    every = load_app_config(committed_context()).environments[env].cleanup.schedule_rate_hours
    assert line.path.startswith(f"{env}/Operations/CleanupFunction")
    assert line.quantity == pytest.approx(3 / every)
    assert line.monthly == pytest.approx(3 / every * 0.30)
    assert tuple(cleanup_handler.ACTION_METRICS.values()) == CLEANUP_METRICS  # what the handler really emits


def test_the_new_prices_name_their_sources(prices):
    raw = json.loads(PRICES.read_text())["regions"][REGION]
    for key, page in (
        ("sagemaker-inference/ml.c6i.xlarge", "https://aws.amazon.com/sagemaker/ai/pricing/"),
        ("mlflow/Small", "https://aws.amazon.com/sagemaker/ai/pricing/"),
        ("mlflow/Medium", "https://aws.amazon.com/sagemaker/ai/pricing/"),
        ("cloudwatch/custom-metric-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    ):
        assert prices.get(REGION, key).source == page
        assert len(raw[key]["seen_at"]) > 40, key  # the public copy the figure was read from, named
