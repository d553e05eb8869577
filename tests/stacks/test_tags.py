"""Every taggable resource carries the project and environment tags the clean-up hook relies on."""

from __future__ import annotations

from stacks.cicd_stack import STAGE_PREFIX
from stacks.config import TAG_ENVIRONMENT, TAG_PROJECT

# Resource types whose CloudFormation schema has no Tags property (or a non-list form handled below).
UNTAGGABLE = {
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::Route",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::Policy",
    "AWS::Lambda::Permission",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::Logs::ResourcePolicy",
    "AWS::CDK::Metadata",
}


def tags_of(resource: dict) -> dict[str, str] | None:
    tags = resource.get("Properties", {}).get("Tags")
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    if isinstance(tags, dict):
        return tags
    return None


def test_every_taggable_resource_carries_project_and_environment(templates):
    missing = []
    for path, template in templates.items():
        env = path.split("/")[0]
        if env.startswith(STAGE_PREFIX):
            continue
        for logical_id, resource in template.to_json()["Resources"].items():
            kind = resource["Type"]
            if kind in UNTAGGABLE or kind.startswith("Custom::"):
                continue
            tags = tags_of(resource)
            if tags is None or tags.get(TAG_PROJECT) != "ragops" or tags.get(TAG_ENVIRONMENT) != env:
                missing.append(f"{path}:{logical_id} ({kind})")
    assert not missing, "untagged resources:\n" + "\n".join(missing)


def test_cicd_resources_carry_the_project_but_no_environment_so_clean_up_never_selects_them(templates):
    wrong = []
    for path, template in templates.items():
        if not path.startswith(STAGE_PREFIX):
            continue
        for logical_id, resource in template.to_json()["Resources"].items():
            if resource["Type"] in UNTAGGABLE:
                continue
            tags = tags_of(resource) or {}
            if tags.get(TAG_PROJECT) != "ragops" or TAG_ENVIRONMENT in tags:
                wrong.append(f"{path}:{logical_id} {tags}")
    assert not wrong, "CI/CD resources tagged wrongly:\n" + "\n".join(wrong)
