"""What an environment bills while idle, read from its synthesized CloudFormation templates.

Idle means no requests and no pipeline execution: what is left are real-time endpoints, the OpenSearch domain,
the MLflow tracking server, interface VPC endpoints, KMS keys, NAT gateways, CloudWatch alarms, and the custom
metrics a function declares it writes on a schedule (the clean-up hook's, every pass). Each becomes a
`Line` priced from the committed table. An endpoint config no endpoint of the stack uses is an on-demand endpoint
(a run brings it up, the clean-up hook takes it down): its line is `idle=False`, priced per hour and not in the
total (`stacks/prices.json`); a line without a price keeps `price=None` and is
reported, never counted as zero, and a region never borrows another region's price. `python -m stacks.cost`
prints the result.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.jumpstart.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "stacks" / "prices.json"
HOURS_PER_MONTH = 730

TemplateJson = Mapping[str, Any]


@dataclass(frozen=True)
class Price:
    """One on-demand list price; `per` ends in "-hour" or "-month", e.g. "instance-hour", "key-month"."""

    usd: float
    per: str
    source: str

    @property
    def monthly(self) -> float:
        return self.usd * (HOURS_PER_MONTH if self.per.endswith("-hour") else 1)


@dataclass(frozen=True)
class PriceTable:
    captured: str
    regions: Mapping[str, Mapping[str, Price]]

    def get(self, region: str, key: str) -> Price | None:
        return self.regions.get(region, {}).get(key)


def load_prices(path: Path = PRICES) -> PriceTable:
    raw = json.loads(path.read_text())
    regions = {
        region: {key: Price(entry["usd"], entry["per"], entry["source"]) for key, entry in entries.items()}
        for region, entries in raw["regions"].items()
    }
    return PriceTable(captured=raw["captured"], regions=regions)


@dataclass(frozen=True)
class Line:
    """One billed quantity of one resource; `price` is None when the table has no entry for `key`."""

    path: str
    what: str
    quantity: float
    unit: str
    key: str
    price: Price | None = None
    idle: bool = True  # False: billed only while a run has it up (an on-demand endpoint)

    @property
    def monthly(self) -> float | None:
        return None if self.price is None else self.quantity * self.price.monthly

    @property
    def hourly(self) -> float | None:
        return None if self.price is None else self.quantity * self.price.usd


@dataclass
class Estimate:
    env: str
    region: str
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # billed, but not priced, with the reason

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines if line.idle and line.monthly is not None)

    @property
    def missing(self) -> list[str]:
        return [
            f"{line.path}: no price in stacks/prices.json for {line.key} in {self.region}"
            for line in self.lines
            if line.price is None
        ]


@functools.cache
def _instance_storage() -> dict[str, bool]:
    """Instance types with local NVMe storage; the others get an EBS ML storage volume SageMaker sizes."""
    models = load_catalog().models.values()
    return {kind: support.instance_storage for model in models for kind, support in model.instance_types.items()}


def _ref(value: Any) -> str | None:
    """The logical id behind a `Ref` or `Fn::GetAtt`, or None for a literal or another intrinsic."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


@dataclass(frozen=True)
class _Resource:
    path: str
    props: Mapping[str, Any]
    template: Mapping[str, Any]  # the Resources of the resource's own stack
    scaling: Mapping[str, int]  # autoscaling MinCapacity by resource id, across the environment's stacks
    region: str


def _endpoint(r: _Resource) -> Iterator[Line | str]:
    config = r.template.get(_ref(r.props.get("EndpointConfigName")) or "", {})
    if not config:
        yield f"{r.path}: its endpoint config is not in this stack's template, so its instances are not counted"
        return
    yield from _variants(r, config.get("Properties", {}), r.props.get("EndpointName"))


def _on_demand_config(r: _Resource) -> Iterator[Line | str]:
    """An endpoint config no endpoint of its stack uses: the instances a run's on-demand endpoint bills while up."""
    logical_id = r.path.rsplit("/", 1)[1]
    used = any(
        resource["Type"] == "AWS::SageMaker::Endpoint"
        and _ref(resource.get("Properties", {}).get("EndpointConfigName")) == logical_id
        for resource in r.template.values()
    )
    if not used:
        yield from _variants(r, r.props, None)


def _variants(r: _Resource, config: Mapping[str, Any], endpoint_name: str | None) -> Iterator[Line | str]:
    """Instance lines of an endpoint config's variants: an endpoint's (`endpoint_name`) or an on-demand one's."""
    for variant in config.get("ProductionVariants", []):
        name, kind = variant.get("VariantName"), variant.get("InstanceType")
        if kind is None:
            yield f"{r.path}: variant {name} is serverless and bills per request"
            continue
        count, how = variant.get("InitialInstanceCount", 1), "no autoscaling"
        if endpoint_name is None:
            how = "on demand"
        elif (target := f"endpoint/{endpoint_name}/variant/{name}") in r.scaling:
            count, how = r.scaling[target], "autoscaling min"
        key = f"sagemaker-inference/{kind}"
        yield Line(r.path, f"SageMaker endpoint {kind} ({how})", count, "instance", key, idle=endpoint_name is not None)
        if endpoint_name is not None and not _instance_storage().get(kind, True):
            yield (
                f"{r.path}: {kind} has no instance storage; the ML storage volume SageMaker attaches is billed "
                "per GB-month and its size is not in the template"
            )


def _domain(r: _Resource) -> Iterator[Line | str]:
    cluster, ebs = r.props.get("ClusterConfig", {}), r.props.get("EBSOptions", {})
    kind, count = cluster.get("InstanceType"), cluster.get("InstanceCount", 1)
    if kind is None:
        yield f"{r.path}: the data node instance type is not in the template"
    else:
        yield Line(r.path, f"OpenSearch data nodes {kind}", count, "node", f"opensearch/{kind}")
    if cluster.get("DedicatedMasterEnabled"):
        master = cluster.get("DedicatedMasterType")
        yield Line(
            r.path,
            f"OpenSearch dedicated masters {master}",
            cluster.get("DedicatedMasterCount", 0),
            "node",
            f"opensearch/{master}",
        )
    if cluster.get("WarmEnabled"):
        warm = cluster.get("WarmType")
        yield Line(
            r.path, f"OpenSearch UltraWarm nodes {warm}", cluster.get("WarmCount", 0), "node", f"opensearch/{warm}"
        )
    if ebs.get("EBSEnabled"):
        volume, size = ebs.get("VolumeType", "gp2"), ebs.get("VolumeSize", 0)
        yield Line(
            r.path,
            f"OpenSearch EBS {volume}, {size} GiB x {count} data nodes",
            size * count,
            "GiB",
            f"opensearch-{volume}/GiB-month",
        )
        if "Iops" in ebs or "Throughput" in ebs:
            yield f"{r.path}: provisioned IOPS/throughput above the gp3 baseline bill extra and are not priced"


def _mlflow(r: _Resource) -> Iterator[Line]:
    size = r.props.get("TrackingServerSize", "Small")  # CloudFormation's default
    yield Line(r.path, f"SageMaker MLflow tracking server {size}", 1, "server", f"mlflow/{size}")


def _vpc_endpoint(r: _Resource) -> Iterator[Line | str]:
    kind = r.props.get("VpcEndpointType", "Gateway")
    if kind == "Gateway":
        return  # S3 and DynamoDB gateway endpoints have no hourly charge
    service = r.props.get("ServiceName")
    service = service.removeprefix(f"com.amazonaws.{r.region}.") if isinstance(service, str) else "(token)"
    subnets = r.props.get("SubnetIds")
    if not isinstance(subnets, list):
        yield f"{r.path}: {kind} endpoint {service} bills per AZ, and its subnets are not in the template"
        return
    key = "vpc-interface-endpoint/AZ-hour" if kind == "Interface" else "vpc-gwlb-endpoint/AZ-hour"
    yield Line(r.path, f"{kind} endpoint {service}", len(subnets), "AZ", key)


def _key(r: _Resource) -> Iterator[Line | str]:
    yield Line(r.path, "KMS customer managed key", 1, "key", "kms/key-month")
    if r.props.get("EnableKeyRotation"):
        yield (
            f"{r.path}: automatic rotation adds a backing key billed like the key itself (AWS KMS pricing page); "
            "how many exist depends on the key's age"
        )


def _nat(r: _Resource) -> Iterator[Line]:
    yield Line(r.path, "NAT gateway", 1, "gateway", "nat-gateway/hour")


def _alarm(r: _Resource) -> Iterator[Line]:
    metrics = [m for m in r.props.get("Metrics", []) if "MetricStat" in m] or [r.props]
    high = any(m.get("Period", m.get("MetricStat", {}).get("Period", 60)) < 60 for m in metrics)
    key = "cloudwatch/high-resolution-alarm-metric-month" if high else "cloudwatch/alarm-metric-month"
    yield Line(r.path, "CloudWatch alarm", len(metrics), "alarm metric", key)


# Template metadata a resource carries when it writes CloudWatch custom metrics (no resource type bills them):
# {"Namespace": ..., "MetricNames": [...], "EveryHours": N}.
CUSTOM_METRICS = "RagOps::CustomMetrics"


def _custom_metrics(r: _Resource, declared: Mapping[str, Any]) -> Iterator[Line]:
    """CloudWatch bills a custom metric per metric-month, "prorated by the hour and metered only when you send
    metrics" (CloudWatch pricing page): metrics written once every N hours bill 1/N of a month each."""
    names, every = declared["MetricNames"], declared["EveryHours"]
    what = f"CloudWatch custom metrics {declared['Namespace']} x{len(names)}, every {every} h"
    yield Line(r.path, what, len(names) / every, "metric-month", "cloudwatch/custom-metric-month")


RULES: dict[str, Callable[[_Resource], Iterator[Line | str]]] = {
    "AWS::SageMaker::Endpoint": _endpoint,
    "AWS::SageMaker::EndpointConfig": _on_demand_config,
    "AWS::OpenSearchService::Domain": _domain,
    "AWS::SageMaker::MlflowTrackingServer": _mlflow,
    "AWS::EC2::VPCEndpoint": _vpc_endpoint,
    "AWS::KMS::Key": _key,
    "AWS::KMS::ReplicaKey": _key,
    "AWS::EC2::NatGateway": _nat,
    "AWS::CloudWatch::Alarm": _alarm,
}


def _scaling_minimums(templates: Mapping[str, TemplateJson]) -> dict[str, int]:
    """SageMaker variants' autoscaling floors: an idle endpoint scales in to MinCapacity, not its initial count."""
    return {
        props["ResourceId"]: props["MinCapacity"]
        for template in templates.values()
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        and (props := resource.get("Properties", {})).get("ServiceNamespace") == "sagemaker"
        and isinstance(props.get("ResourceId"), str)
    }


def estimate(templates: Mapping[str, TemplateJson], env: str, region: str, prices: PriceTable) -> Estimate:
    """Price the idle-billing resources of the stacks `templates` holds under "<env>/" (keys are stack paths)."""
    own = {path: t for path, t in templates.items() if path.startswith(f"{env}/")}
    scaling, result = _scaling_minimums(own), Estimate(env, region)
    for stack, template in sorted(own.items()):
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            rule = RULES.get(resource["Type"])
            declared = resource.get("Metadata", {}).get(CUSTOM_METRICS)
            if rule is None and declared is None:
                continue
            found = _Resource(f"{stack}/{logical_id}", resource.get("Properties", {}), resources, scaling, region)
            items = [*(rule(found) if rule else []), *(_custom_metrics(found, declared) if declared else [])]
            for item in items:
                if isinstance(item, Line):
                    result.lines.append(dataclasses.replace(item, price=prices.get(region, item.key)))
                else:
                    result.notes.append(item)
    return result
