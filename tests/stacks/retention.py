"""What a resource CloudFormation keeps on delete needs to keep working, read from synthesized templates.

A retained resource needs:
- every resource its properties refer to: `Ref`, `Fn::GetAtt`, `Fn::Sub` variables, and the other stack's resource
  behind a cross-stack reference (CDK's weak `Fn::GetStackOutput` or an `Fn::ImportValue` of an export), except
  where a policy statement only names it as what it grants on (`Resource`, `NotResource`, `Condition`): a grant on
  a deleted resource grants nothing and breaks nothing, while a deleted principal breaks the policy naming it
  (nor is a custom resource's provider needed: see `is_custom`);
- every policy attached to it: IAM policies whose Roles/Users/Groups name it, an S3 bucket policy on it, a
  CloudWatch Logs resource policy naming it (a retained log group keeps receiving what the policy admits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# DeletionPolicy values that leave the resource in the account when its stack is deleted (CloudFormation's
# DeletionPolicy attribute: Retain, RetainExceptOnCreate, Snapshot; Delete is the default).
RETAINED = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})
GRANT_TARGETS = frozenset({"Resource", "NotResource", "Condition"})
# Resource type -> the properties naming what it is attached to.
ATTACHMENTS: dict[str, tuple[str, ...]] = {
    "AWS::IAM::Policy": ("Roles", "Users", "Groups"),
    "AWS::IAM::ManagedPolicy": ("Roles", "Users", "Groups"),
    "AWS::IAM::RolePolicy": ("RoleName",),
    "AWS::S3::BucketPolicy": ("Bucket",),
    "AWS::Logs::ResourcePolicy": ("PolicyDocument",),
}
SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def is_custom(resource_type: str) -> bool:
    """CloudFormation sends a custom resource's provider (its ServiceToken) create, update and delete requests
    only: once the stack lets go of a retained one, nothing calls the provider again."""
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


@dataclass(frozen=True, order=True)
class Address:
    stack: str  # the deployed stack name, e.g. "prod-VectorStore"
    logical_id: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.logical_id}"


class Templates:
    """Templates keyed by stack name, with cross-stack references resolved to the exporting resource."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        self._templates = templates
        self._exports = {
            output["Export"]["Name"]: (stack, output["Value"])
            for stack, template in templates.items()
            for output in template.get("Outputs", {}).values()
            if isinstance(output.get("Export", {}).get("Name"), str)
        }

    def resources(self) -> Iterator[tuple[Address, Mapping[str, Any]]]:
        for stack, template in self._templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                yield Address(stack, logical_id), resource

    def resource(self, address: Address) -> Mapping[str, Any]:
        return self._templates[address.stack]["Resources"][address.logical_id]

    def retained(self, address: Address) -> bool:
        return self.resource(address).get("DeletionPolicy") in RETAINED

    def references(self, stack: str, value: Any, *, grants: bool = True) -> set[Address]:
        """Every resource `value` (a piece of `stack`'s template) refers to; `grants=False` skips what policy
        statements only grant on."""
        found: set[Address] = set()
        self._walk(stack, value, found, grants)
        return found

    def _walk(self, stack: str, value: Any, found: set[Address], grants: bool) -> None:
        if isinstance(value, list):
            for item in value:
                self._walk(stack, item, found, grants)
            return
        if not isinstance(value, Mapping):
            return
        resources = self._templates[stack].get("Resources", {})
        if "Ref" in value and value["Ref"] in resources:
            found.add(Address(stack, value["Ref"]))
        elif "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else str(target).split(".")[0]
            found.add(Address(stack, name))
        elif "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(Address(stack, name) for name in SUB_VARIABLE.findall(text) if name in resources)
            if isinstance(value["Fn::Sub"], list):
                self._walk(stack, value["Fn::Sub"][1], found, grants)
        elif "Fn::GetStackOutput" in value:
            source = value["Fn::GetStackOutput"]
            exporter = source["StackName"]
            self._walk(exporter, self._templates[exporter]["Outputs"][source["OutputName"]]["Value"], found, grants)
        elif "Fn::ImportValue" in value and value["Fn::ImportValue"] in self._exports:
            exporter, exported = self._exports[value["Fn::ImportValue"]]
            self._walk(exporter, exported, found, grants)
        else:
            statement = "Effect" in value and ("Action" in value or "NotAction" in value)
            for key, item in value.items():
                if grants or not (statement and key in GRANT_TARGETS):
                    self._walk(stack, item, found, grants)

    def attached_policies(self, target: Address) -> set[Address]:
        """The policies (ATTACHMENTS) that attach to `target`."""
        return {
            address
            for address, resource in self.resources()
            if any(
                target in self.references(address.stack, resource.get("Properties", {}).get(prop))
                for prop in ATTACHMENTS.get(resource["Type"], ())
            )
        }

    def needs(self, address: Address) -> dict[Address, str]:
        """What the resource at `address` needs to keep working, each with the reason."""
        resource = self.resource(address)
        properties = dict(resource.get("Properties", {}))
        if is_custom(resource["Type"]):
            properties.pop("ServiceToken", None)  # a kept custom resource is never called again
        needed = {
            ref: "referenced by its properties"
            for ref in self.references(address.stack, properties, grants=False)
            if ref != address
        }
        needed.update({policy: "a policy attached to it" for policy in self.attached_policies(address)})
        return needed


def lost_needs(templates: Templates) -> list[str]:
    """Each retained resource's need that a stack delete would remove: "<retained> needs <deleted> (<why>)"."""
    return sorted(
        f"{address} needs {needed} ({why})"
        for address, _ in templates.resources()
        if templates.retained(address)
        for needed, why in templates.needs(address).items()
        if not templates.retained(needed)
    )
