"""Models stack: JumpStart models, network isolation in the VPC, KMS, scoped roles, autoscaling per environment."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.app_builder import build_app
from stacks.config import ConfigError
from stacks.jumpstart.catalog import load_catalog
from stacks.model_endpoint import INSTANCE_STORAGE_REASON
from tests.stacks.conftest import ENVIRONMENTS, cdk_context
from tests.stacks.iam_checks import as_list, assert_least_privilege, identity_statements

ENDPOINTS = {"dev": {"embedding"}, "staging": {"embedding", "llm"}, "prod": {"embedding", "llm"}}
INSTANCE_TYPES = {
    ("dev", "embedding"): "ml.c6i.xlarge",
    ("staging", "embedding"): "ml.g5.2xlarge",
    ("staging", "llm"): "ml.g6.12xlarge",
    ("prod", "embedding"): "ml.g5.2xlarge",
    ("prod", "llm"): "ml.g6.12xlarge",
}


def resources(templates, env: str, kind: str) -> dict[str, dict]:
    return templates[f"{env}/Models"].find_resources(kind)


def by_role(templates, env: str, kind: str) -> dict[str, dict]:
    found = resources(templates, env, kind)
    return {
        ("llm" if logical_id.startswith("Llm") else "embedding"): r["Properties"] for logical_id, r in found.items()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_one_model_config_and_named_endpoint_per_enabled_role(templates, env):
    for kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig"):
        assert set(by_role(templates, env, kind)) == ENDPOINTS[env]
    # Staging's endpoints are on demand: its runs create them (tests/stacks/test_on_demand.py).
    in_stack = set() if env == "staging" else ENDPOINTS[env]
    names = {p["EndpointName"] for p in by_role(templates, env, "AWS::SageMaker::Endpoint").values()}
    assert names == {f"ragops-{env}-{role}" for role in in_stack}


def test_dev_has_no_llm_resources(templates):
    template = templates["dev/Models"]
    assert not [logical_id for logical_id in template.to_json()["Resources"] if logical_id.startswith("Llm")]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_models_are_network_isolated_in_the_isolated_subnets(templates, env):
    zones = {"dev": 2, "staging": 3, "prod": 3}[env]
    for props in by_role(templates, env, "AWS::SageMaker::Model").values():
        assert props["EnableNetworkIsolation"] is True
        assert len(props["VpcConfig"]["Subnets"]) == zones
        assert all("workloadsSubnet" in json.dumps(s) for s in props["VpcConfig"]["Subnets"])
        (group,) = props["VpcConfig"]["SecurityGroupIds"]
        assert group == {"Fn::GetAtt": [next(iter(resources(templates, env, "AWS::EC2::SecurityGroup"))), "GroupId"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_model_security_group_admits_nothing(templates, env):
    (group,) = resources(templates, env, "AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]
    assert [(r["FromPort"], r["ToPort"]) for r in group["Properties"]["SecurityGroupEgress"]] == [(443, 443)]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_models_load_uncompressed_jumpstart_prefixes_with_images_of_the_region(templates, env):
    for role, props in by_role(templates, env, "AWS::SageMaker::Model").items():
        container = props["PrimaryContainer"]
        source = container["ModelDataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["CompressionType"] == "None"
        assert source["S3Uri"].startswith("s3://jumpstart-cache-prod-us-east-1/")
        assert source["S3Uri"].endswith("/")
        assert "ModelDataUrl" not in container
        assert ".dkr.ecr.us-east-1.amazonaws.com/" in container["Image"]
        accelerator = "cpu" if INSTANCE_TYPES[(env, role)].startswith("ml.c") else "gpu"
        assert f"-{accelerator}-" in container["Image"]
        assert all(isinstance(value, str) for value in container["Environment"].values())


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_llm_is_deepseek_r1_distill_qwen_7b_on_tgi_with_four_shards(templates, env):
    container = by_role(templates, env, "AWS::SageMaker::Model")["llm"]["PrimaryContainer"]
    assert "deepseek-llm-r1-distill-qwen-7b" in container["ModelDataSource"]["S3DataSource"]["S3Uri"]
    assert "huggingface-pytorch-tgi-inference" in container["Image"]
    assert container["Environment"]["NUM_SHARD"] == "4"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_configs_size_variants_from_config(templates, env):
    for role, props in by_role(templates, env, "AWS::SageMaker::EndpointConfig").items():
        (variant,) = props["ProductionVariants"]
        assert variant["InstanceType"] == INSTANCE_TYPES[(env, role)]
        assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= 600
        assert variant["ModelDataDownloadTimeoutInSeconds"] >= 1200
        expected_count = 2 if (env, role) == ("prod", "embedding") else 1
        assert variant["InitialInstanceCount"] == expected_count


def _acknowledged(construct: Construct) -> dict[str, str]:
    """The cdk-nag acknowledgements made on `construct` itself (rule id -> reason)."""
    return {
        rule.removeprefix("Annotation::"): reason
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_project_key_is_on_every_endpoint_config_except_on_instances_with_local_storage(app, templates, env):
    """Where the committed catalog says the instance type has local NVMe storage (g5, g6), KmsKeyId is left off:
    CreateEndpointConfig is documented to fail with it there (SDK references), and botocore's model says the key
    "does not encrypt instance local storage" (the hardware does). SM2 is acknowledged on exactly those configs."""
    storage = {t: s.instance_storage for m in load_catalog().models.values() for t, s in m.instance_types.items()}
    models = app.node.find_child(env).node.find_child("Models")
    configs = [c for c in models.node.find_all() if isinstance(c, sagemaker.CfnEndpointConfig)]
    assert {c.node.scope.node.id.lower() for c in configs} == ENDPOINTS[env]
    synthesized = resources(templates, env, "AWS::SageMaker::EndpointConfig")
    for config in configs:
        props = synthesized[cdk.Stack.of(config).resolve(config.logical_id)]["Properties"]
        (variant,) = props["ProductionVariants"]
        key, acknowledged = props.get("KmsKeyId"), _acknowledged(config)
        if storage[variant["InstanceType"]]:
            assert key is None, variant["InstanceType"]
            assert acknowledged == {"AwsSolutions-SM2": INSTANCE_STORAGE_REASON}
            assert "local NVMe instance storage, which its hardware encrypts" in INSTANCE_STORAGE_REASON
        else:
            assert "Storage" in json.dumps(key), variant["InstanceType"]  # the project key, from the storage stack
            assert acknowledged == {}


def test_llm_startup_and_download_timeouts_come_from_config(templates):
    (variant,) = by_role(templates, "prod", "AWS::SageMaker::EndpointConfig")["llm"]["ProductionVariants"]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 1800
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 3600


@pytest.mark.parametrize(("env", "scaled"), [("dev", 0), ("staging", 0), ("prod", 2)])
def test_target_tracking_on_invocations_per_instance_only_where_config_scales(templates, env, scaled):
    targets = resources(templates, env, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources(templates, env, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(targets) == len(policies) == scaled
    for target in targets.values():
        props = target["Properties"]
        assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert props["MinCapacity"] < props["MaxCapacity"]
        assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(props["RoleARN"])
    for policy in policies.values():
        tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
            "SageMakerVariantInvocationsPerInstance"
        )


def test_prod_capacity_bounds_come_from_config(templates):
    bounds = {
        logical_id.split("ScalableTarget")[0]: (t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"])
        for logical_id, t in resources(templates, "prod", "AWS::ApplicationAutoScaling::ScalableTarget").items()
    }
    assert bounds == {"Embedding": (2, 4), "Llm": (1, 3)}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_roles_read_only_their_jumpstart_prefix_and_image(templates, env):
    template = templates[f"{env}/Models"]
    assert_least_privilege(template)
    models = by_role(templates, env, "AWS::SageMaker::Model")
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if not logical_id.startswith(("Embedding", "Llm")):
            continue  # the interface drain's functions (test_interface_drain.py)
        role = "llm" if logical_id.startswith("Llm") else "embedding"
        container = models[role]["PrimaryContainer"]
        uri = container["ModelDataSource"]["S3DataSource"]["S3Uri"]
        bucket, prefix = uri.removeprefix("s3://").split("/", 1)
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        by_action = {action: s for s in statements for action in as_list(s["Action"])}
        assert by_action["s3:GetObject"]["Resource"] == f"arn:aws:s3:::{bucket}/{prefix}*"
        assert by_action["s3:ListBucket"]["Resource"] == f"arn:aws:s3:::{bucket}"
        assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        repository = container["Image"].split("/", 1)[1].split(":")[0]
        assert by_action["ecr:BatchGetImage"]["Resource"].endswith(f":repository/{repository}")
        assert by_action["cloudwatch:PutMetricData"]["Condition"]
        assert by_action["ec2:DeleteNetworkInterface"]["Condition"]["ArnEquals"]["ec2:Vpc"]
        assert "Storage" in json.dumps(by_action["kms:Decrypt"]["Resource"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_logs_are_encrypted_and_expire(templates, env):
    groups = resources(templates, env, "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"] for g in groups.values() if "LogGroupName" in g["Properties"]}
    assert names == {f"/aws/sagemaker/Endpoints/ragops-{env}-{role}" for role in ENDPOINTS[env]}
    assert len(groups) == len(names) + 1  # and the interface drain's
    assert all("KmsKeyId" in g["Properties"] and g["Properties"]["RetentionInDays"] > 0 for g in groups.values())


def test_every_statement_is_checked(templates):
    """The least-privilege helper sees the statements (guards against an empty match passing silently)."""
    assert len(identity_statements(templates["prod/Models"])) >= 16


def _app_with(tmp_path, env: str, path: list[str], value) -> cdk.App:
    context = cdk_context()
    node = context["ragops"]["environments"][env]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return build_app(cdk.App(context={**context, "environments": env}, outdir=str(tmp_path)), with_checks=False)


def test_unsupported_instance_type_fails_synth_naming_env_key_and_supported_values(tmp_path):
    with pytest.raises(ConfigError) as error:
        _app_with(tmp_path, "staging", ["models", "embedding", "instance_type"], "ml.g5.xlarge")
    message = str(error.value)
    assert "environment 'staging'" in message
    assert "ragops.environments.staging.models.embedding.instance_type: 'ml.g5.xlarge'" in message
    assert "supported: ml.c6i.xlarge, ml.g4dn.2xlarge, ml.g5.2xlarge" in message


def test_unsupported_region_fails_synth_naming_env_key_and_supported_regions(tmp_path):
    context = cdk_context()
    dev = context["ragops"]["environments"]["dev"]
    dev["region"] = "sa-east-1"
    dev["network"]["availability_zone_ids"] = ["sae1-az1", "sae1-az2"]
    with pytest.raises(ConfigError) as error:
        build_app(cdk.App(context={**context, "environments": "dev"}, outdir=str(tmp_path)), with_checks=False)
    message = str(error.value)
    assert "environment 'dev': ragops.environments.dev.region: 'sa-east-1'" in message
    assert "us-east-1" in message
    assert "eu-central-1" in message


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_autoscaled_endpoints_keep_their_instance_count_across_deploys(templates, env):
    scaled = {
        logical_id.split("ScalableTarget")[0]
        for logical_id in resources(templates, env, "AWS::ApplicationAutoScaling::ScalableTarget")
    }
    for logical_id, endpoint in resources(templates, env, "AWS::SageMaker::Endpoint").items():
        retained = endpoint["Properties"].get("RetainAllVariantProperties", False)
        assert retained is any(logical_id.startswith(prefix) for prefix in scaled), logical_id
