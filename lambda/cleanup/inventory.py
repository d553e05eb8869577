"""What a clean-up pass works from and what it leaves: the clients, this environment's tagged resources, the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

PROJECT = "ragops"
TAG_PROJECT = "ragops:project"
TAG_ENVIRONMENT = "ragops:environment"
# Ownership is a positive mark: a resource is this hook's to delete only when the code that created it at run
# time tagged it with its own name (processing/backends/on_demand.py). That code creates endpoints only, on a
# stack's endpoint config, so endpoints are the one type deleted. A stack's own endpoints carry no such tag, and no
# tag's absence makes anything ours: CloudFormation's registry schema for endpoints says
# `"cloudFormationSystemTags": false`, so `aws:cloudformation:stack-name` is never there to go by.
CREATED_BY_TAG = "ragops:created-by"
CREATORS = frozenset({"processing.backends.on_demand"})
DELETABLE_TYPES = ("sagemaker:endpoint",)
# Pipelines are never deleted: the hook stops their runaway executions, which it finds through them.
RESOURCE_TYPES = (*DELETABLE_TYPES, "sagemaker:pipeline")
TagMap = dict[str, dict[str, str]]  # ARN -> tags


@dataclass(frozen=True)
class Clients:
    sagemaker: Any
    tagging: Any
    cloudwatch: Any
    sns: Any
    cloudformation: Any


@dataclass
class Action:
    kind: str
    name: str
    action: str
    reason: str


@dataclass
class Report:
    environment: str
    mode: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, reason: str) -> None:
        self.actions.append(Action(kind, name, action, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "counts": dict(Counter(item.action for item in self.actions)),
            "actions": [asdict(a) for a in self.actions],
        }


@dataclass(frozen=True)
class Tagged:
    """This environment's resources, by type, as ARN -> tags (ARNs lower-cased: SageMaker lower-cases names)."""

    by_type: dict[str, TagMap]

    def of(self, resource_type: str) -> TagMap:
        return self.by_type.get(resource_type, {})


def find_tagged(tagging: Any, environment: str) -> Tagged:
    by_type: dict[str, TagMap] = {}
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_PROJECT, "Values": [PROJECT]}, {"Key": TAG_ENVIRONMENT, "Values": [environment]}],
        ResourceTypeFilters=list(RESOURCE_TYPES),
    )
    for page in pages:
        for item in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            # Defence in depth: act only when both tags are exactly this project's and environment's.
            if tags.get(TAG_PROJECT) != PROJECT or tags.get(TAG_ENVIRONMENT) != environment:
                continue
            arn = item["ResourceARN"].lower()
            resource_type = "sagemaker:" + arn.split(":", 5)[5].split("/", 1)[0]
            if resource_type not in RESOURCE_TYPES:
                continue  # not asked for: nothing else is the hook's, whatever its tags
            if resource_type in DELETABLE_TYPES and tags.get(CREATED_BY_TAG) not in CREATORS:
                continue  # not created at run time by our code: a stack's, or someone else's
            by_type.setdefault(resource_type, {})[arn] = tags
    return Tagged(by_type)
