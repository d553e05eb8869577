"""Regenerate `models.json`, the project's JumpStart table, from a JumpStart model-spec file.

    .venv/bin/python -m stacks.jumpstart.derive path/to/model-specs.json

The spec file maps a spec key to the JumpStart manifest of one model version (image aliases per region,
instance variants, artifact keys, container environment, supported instance types). Synth reads only the
committed table this writes, never the spec file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stacks.jumpstart.catalog import TABLE_PATH, Catalog

# The models the stacks deploy: embedding (all-MiniLM-L6-v2, CPU and GPU images) and the LLM.
MODELS = ("HUGGINGFACE_SENTENCESIMILARITY_ALL_MINILM_L6_V2_2_1_21", "DEEPSEEK_LLM_R1_DISTILL_QWEN_7B_1_1_2")
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2")

# EC2 instance families with NVMe instance-store volumes. SageMaker refuses an endpoint config KmsKeyId for
# them (their local volumes are encrypted by the instance hardware), so the table records it per instance type.
INSTANCE_STORE_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "c6id", "m6id", "r6id"})
EBS_ONLY_FAMILIES = frozenset({"c6i", "m6i", "r6i", "p3", "c5", "m5"})


class SpecError(ValueError):
    """The spec file lacks a fact the table needs; the message names model, region or instance type."""


def _family(instance_type: str) -> str:
    return instance_type.split(".")[1]


def _instance_storage(instance_type: str) -> bool:
    family = _family(instance_type)
    if family in INSTANCE_STORE_FAMILIES:
        return True
    if family in EBS_ONLY_FAMILIES:
        return False
    raise SpecError(f"{instance_type}: unknown whether family '{family}' has instance storage; add it to derive.py")


def _image_alias(spec: dict[str, Any], key: str, instance_type: str) -> str:
    for variant in spec["instanceVariants"]:
        if variant["instanceType"] == _family(instance_type) and "imageUri" in variant:
            return variant["imageUri"].removeprefix("$")
    raise SpecError(f"{key}: no image variant for instance family of {instance_type}")


def _accelerator(alias: str) -> str:
    kind = alias.split("_", 1)[0]
    if kind not in ("cpu", "gpu"):
        raise SpecError(f"image alias '{alias}' is neither cpu_* nor gpu_*")
    return kind


def derive_model(key: str, spec: dict[str, Any], regions: tuple[str, ...]) -> dict[str, Any]:
    """One table entry: the prepacked artifact (inference code included) is what JumpStart deploys."""
    artifact_key = spec.get("prepackedArtifactKey") or spec["artifactKey"]
    aliases = {t: _image_alias(spec, key, t) for t in spec["instanceTypes"]}
    by_region = {entry["region"]: entry["aliases"] for entry in spec["instanceAliases"]}
    table_regions = {}
    for region in regions:
        if region not in by_region:
            raise SpecError(f"{key}: no image aliases for region {region}")
        images = {}
        for alias in sorted(set(aliases.values())):
            if alias not in by_region[region]:
                raise SpecError(f"{key}: region {region} lacks image alias {alias}")
            images[_accelerator(alias)] = by_region[region][alias]
        table_regions[region] = {
            "artifact_uri": f"s3://jumpstart-cache-prod-{region}/{artifact_key}",
            "images": images,
        }
    return {
        "model_id": spec["modelId"],
        "version": spec["version"],
        "artifact_key": artifact_key,
        "uncompressed": not artifact_key.endswith(".tar.gz"),
        # CloudFormation container environments are string maps.
        "environment": {name: str(value) for name, value in sorted(spec["environment"].items())},
        "instance_types": {
            t: {"accelerator": _accelerator(aliases[t]), "instance_storage": _instance_storage(t)}
            for t in sorted(spec["instanceTypes"])
        },
        "regions": table_regions,
    }


def derive(specs: dict[str, Any], models: tuple[str, ...] = MODELS, regions: tuple[str, ...] = REGIONS) -> dict:
    missing = [m for m in models if m not in specs]
    if missing:
        raise SpecError(f"spec file lacks model(s) {', '.join(missing)}")
    table = {"models": {key: derive_model(key, specs[key], regions) for key in models}}
    Catalog.model_validate(table)  # the loader's checks, before anything is written
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="JumpStart model-specs.json")
    parser.add_argument("--output", type=Path, default=TABLE_PATH, help=f"table to write (default {TABLE_PATH.name})")
    args = parser.parse_args(argv)
    try:
        table = derive(json.loads(args.spec.read_text()))
    except (OSError, KeyError, ValueError) as error:  # ValueError: bad JSON, SpecError, table validation
        print(f"derive: {args.spec}: {error!r}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
