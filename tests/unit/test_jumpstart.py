"""JumpStart table: the committed table loads and resolves; derivation keeps the facts and refuses gaps."""

from __future__ import annotations

import copy
import json

import pytest

from stacks.config import ConfigError
from stacks.jumpstart.catalog import Catalog, DeploymentTarget, load_catalog, resolve
from stacks.jumpstart.derive import SpecError, derive, main
from stacks.model_endpoint import container
from stacks.models_stack import EMBEDDING_MODEL, LLM_MODEL

IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:1.13.1-{kind}-py39"
SPEC = {
    "TINY": {
        "modelId": "tiny-model",
        "version": "1.0.0",
        "artifactKey": "tiny/artifacts/inference/v1.0.0/",
        "prepackedArtifactKey": "tiny/artifacts/inference-prepack/v1.0.0/",
        "environment": {"NUM_SHARD": 4, "SAGEMAKER_PROGRAM": "inference.py"},
        "instanceTypes": ["ml.g5.2xlarge", "ml.c6i.xlarge"],
        "instanceVariants": [
            {"imageUri": "$cpu_ecr_uri_1", "instanceType": "c6i"},
            {"imageUri": "$gpu_ecr_uri_2", "instanceType": "g5"},
            {"instanceType": "ml.g5.2xlarge"},
        ],
        "instanceAliases": [
            {
                "region": region,
                "aliases": {
                    "cpu_ecr_uri_1": IMAGE.format(region=region, kind="cpu"),
                    "gpu_ecr_uri_2": IMAGE.format(region=region, kind="gpu"),
                },
            }
            for region in ("us-east-1", "eu-west-1")
        ],
    }
}


def test_committed_table_covers_both_models_in_the_supported_regions():
    catalog = load_catalog()
    assert set(catalog.models) == {EMBEDDING_MODEL, LLM_MODEL}
    for spec in catalog.models.values():
        assert {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"} <= set(spec.regions)
        assert spec.uncompressed
    embedding = catalog.models[EMBEDDING_MODEL]
    assert embedding.instance_types["ml.c6i.xlarge"].accelerator == "cpu"
    assert not embedding.instance_types["ml.c6i.xlarge"].instance_storage
    assert embedding.instance_types["ml.g5.2xlarge"].instance_storage


def test_derivation_takes_the_prepacked_prefix_string_environment_and_per_region_images():
    table = derive(SPEC, models=("TINY",), regions=("us-east-1", "eu-west-1"))
    entry = table["models"]["TINY"]
    assert entry["artifact_key"] == "tiny/artifacts/inference-prepack/v1.0.0/"
    assert entry["uncompressed"] is True
    assert entry["environment"] == {"NUM_SHARD": "4", "SAGEMAKER_PROGRAM": "inference.py"}
    assert entry["instance_types"]["ml.c6i.xlarge"] == {"accelerator": "cpu", "instance_storage": False}
    assert entry["instance_types"]["ml.g5.2xlarge"] == {"accelerator": "gpu", "instance_storage": True}
    assert entry["regions"]["eu-west-1"]["artifact_uri"] == (
        "s3://jumpstart-cache-prod-eu-west-1/tiny/artifacts/inference-prepack/v1.0.0/"
    )
    assert entry["regions"]["eu-west-1"]["images"]["gpu"] == IMAGE.format(region="eu-west-1", kind="gpu")


def test_derivation_refuses_a_region_without_images():
    with pytest.raises(SpecError, match="no image aliases for region ap-south-1"):
        derive(SPEC, models=("TINY",), regions=("ap-south-1",))


def test_derivation_refuses_an_instance_family_of_unknown_storage():
    spec = copy.deepcopy(SPEC)
    spec["TINY"]["instanceTypes"].append("ml.x9.large")
    spec["TINY"]["instanceVariants"].append({"imageUri": "$cpu_ecr_uri_1", "instanceType": "x9"})
    with pytest.raises(SpecError, match="family 'x9'"):
        derive(spec, models=("TINY",), regions=("us-east-1",))


def test_cli_fails_cleanly_and_writes_nothing_for_a_spec_lacking_the_models(tmp_path, capsys):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    assert main([str(spec_path), "--output", str(tmp_path / "out.json")]) == 1  # lacks the project's models
    assert "lacks model(s)" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_table_rejects_an_image_from_another_region():
    table = derive(SPEC, models=("TINY",), regions=("us-east-1",))
    table["models"]["TINY"]["regions"]["us-east-1"]["images"]["cpu"] = IMAGE.format(region="eu-west-1", kind="cpu")
    with pytest.raises(ValueError, match="not an ECR image in us-east-1"):
        Catalog.model_validate(table)


def test_resolve_names_environment_key_and_supported_instance_types():
    with pytest.raises(ConfigError, match=r"ragops\.environments\.qa\.models\.llm\.instance_type: 'ml\.g5\.xlarge'"):
        resolve(LLM_MODEL, env="qa", region="us-east-1", instance_type="ml.g5.xlarge", key="models.llm.instance_type")


def test_compressed_artifacts_use_model_data_url():
    target = DeploymentTarget(
        model_id="m",
        version="1",
        image_uri=IMAGE.format(region="us-east-1", kind="cpu"),
        artifact_uri="s3://jumpstart-cache-prod-us-east-1/m/model.tar.gz",
        uncompressed=False,
        environment={},
        instance_type="ml.c6i.xlarge",
        instance_storage=False,
    )
    definition = container(target)
    assert definition.model_data_url == target.artifact_uri
    assert definition.model_data_source is None
    assert (
        target.image_repository_arn("aws")
        == "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"
    )
