"""Project and environment tags on every resource: clean-up and cost reports select by them."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from constructs import IConstruct

from stacks.config import PROJECT, TAG_ENVIRONMENT, TAG_PROJECT

# aws-cdk-lib's own custom-resource providers are plain CfnResources that `Tags` cannot reach.
_PROVIDER_TYPES = {"AWS::IAM::Role", "AWS::Lambda::Function"}


@jsii.implements(cdk.IAspect)
class _TagProviderResources:
    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, cdk.CfnResource)
            and node.cfn_resource_type in _PROVIDER_TYPES
            and not cdk.TagManager.is_taggable(node)
        ):
            node.add_property_override("Tags", self._tags)


def _tag(scope: IConstruct, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        cdk.Tags.of(scope).add(key, value)
    cdk.Aspects.of(scope).add(_TagProviderResources(tags))


def tag_environment(scope: IConstruct, environment: str) -> None:
    """Tag everything below `scope` with the project and `environment`."""
    _tag(scope, {TAG_PROJECT: PROJECT, TAG_ENVIRONMENT: environment})


def tag_project_only(scope: IConstruct) -> None:
    """Tag with the project but no environment: resources shared by environments, which clean-up never selects."""
    _tag(scope, {TAG_PROJECT: PROJECT})
