"""Storage stack: key rotation, bucket encryption, TLS, versioning, logging, lifecycle, removal per env."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from tests.stacks.conftest import ENVIRONMENTS


def buckets(template: Template) -> dict[str, dict]:
    return template.find_resources("AWS::S3::Bucket")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_is_customer_managed_with_rotation(templates, env):
    template = templates[f"{env}/Storage"]
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_lets_cloudwatch_logs_use_it_only_for_this_accounts_log_groups(templates, env):
    statements = next(iter(templates[f"{env}/Storage"].find_resources("AWS::KMS::Key").values()))["Properties"][
        "KeyPolicy"
    ]["Statement"]
    logs = [s for s in statements if str(s["Principal"].get("Service", "")).startswith("logs.")]
    assert len(logs) == 1
    assert "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_blocks_public_access_and_is_versioned(templates, env):
    found = buckets(templates[f"{env}/Storage"])
    assert len(found) == 3
    for bucket in found.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in rule for rule in rules)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_and_artifact_buckets_use_the_project_key_and_log_access(templates, env):
    template = templates[f"{env}/Storage"]
    (key_id,) = template.find_resources("AWS::KMS::Key")
    encrypted = [
        b["Properties"]
        for b in buckets(template).values()
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    ]
    assert len(encrypted) == 2
    for props in encrypted:
        default = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert default["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert default["BucketKeyEnabled"] is True
        assert "DestinationBucketName" in props["LoggingConfiguration"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_denies_plain_http_and_old_tls(templates, env):
    policies = templates[f"{env}/Storage"].find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        conditions = [s["Condition"] for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_dev_buckets_are_destroyed_with_their_objects(templates):
    template = templates["dev/Storage"]
    for bucket in buckets(template).values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert template.find_resources("Custom::S3AutoDeleteObjects")


def test_prod_buckets_and_key_are_retained(templates):
    template = templates["prod/Storage"]
    for bucket in buckets(template).values():
        assert bucket["DeletionPolicy"] == "Retain"
    assert not template.find_resources("Custom::S3AutoDeleteObjects")
    for key in template.find_resources("AWS::KMS::Key").values():
        assert key["DeletionPolicy"] == "Retain"
