"""The committed JumpStart table (`models.json`): loaded and validated once, then resolved per endpoint.

Resolution is where an environment meets the table: a region or instance type outside it is a
configuration error naming the environment, the key and the supported values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from stacks.config import ConfigError

TABLE_PATH = Path(__file__).with_name("models.json")
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[a-z0-9._/-]+):[\w.-]+$"
)

Accelerator = Literal["cpu", "gpu"]


def jumpstart_bucket(region: str) -> str:
    """JumpStart's public model bucket of `region`: every artifact in the table lives there."""
    return f"jumpstart-cache-prod-{region}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceSupport(_Strict):
    accelerator: Accelerator
    instance_storage: bool


class RegionalArtifacts(_Strict):
    artifact_uri: str
    images: dict[Accelerator, str]


class ModelSpec(_Strict):
    model_id: str
    version: str
    artifact_key: str
    uncompressed: bool
    environment: dict[str, str]
    instance_types: dict[str, InstanceSupport]
    regions: dict[str, RegionalArtifacts]

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.uncompressed == self.artifact_key.endswith(".tar.gz"):
            raise ValueError(f"{self.model_id}: uncompressed must be true exactly when the key is not a .tar.gz")
        needed = {support.accelerator for support in self.instance_types.values()}
        for region, artifacts in self.regions.items():
            if artifacts.artifact_uri != f"s3://{jumpstart_bucket(region)}/{self.artifact_key}":
                raise ValueError(f"{self.model_id}: {region} artifact_uri is not in {jumpstart_bucket(region)}")
            if needed - set(artifacts.images):
                raise ValueError(f"{self.model_id}: {region} lacks a {'/'.join(sorted(needed))} image")
            for image in artifacts.images.values():
                match = ECR_IMAGE.match(image)
                if not match or match["region"] != region:
                    raise ValueError(f"{self.model_id}: '{image}' is not an ECR image in {region}")
        return self


class Catalog(_Strict):
    models: dict[str, ModelSpec]


@dataclass(frozen=True)
class DeploymentTarget:
    """Everything one endpoint needs from the table, for one region and instance type."""

    model_id: str
    version: str
    image_uri: str
    artifact_uri: str
    uncompressed: bool
    environment: dict[str, str]
    instance_type: str
    instance_storage: bool

    @property
    def artifact_bucket(self) -> str:
        return self.artifact_uri.removeprefix("s3://").split("/", 1)[0]

    @property
    def artifact_key(self) -> str:
        return self.artifact_uri.removeprefix("s3://").split("/", 1)[1]

    def image_repository_arn(self, partition: str) -> str:
        match = ECR_IMAGE.match(self.image_uri)
        assert match, "validated when the table loaded"
        return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


@cache
def load_catalog(path: Path = TABLE_PATH) -> Catalog:
    return Catalog.model_validate_json(path.read_text())


def resolve(model_key: str, *, env: str, region: str, instance_type: str, key: str) -> DeploymentTarget:
    """The table entry for `model_key` in `region` on `instance_type`; `key` is the config key being resolved."""
    spec = load_catalog().models[model_key]
    where = f"environment '{env}': ragops.environments.{env}"
    model = f"JumpStart model {spec.model_id} {spec.version}"
    if region not in spec.regions:
        raise ConfigError(
            f"{where}.region: '{region}' has no entry for {model} in stacks/jumpstart/models.json "
            f"(needed by {key}); supported: {', '.join(sorted(spec.regions))}"
        )
    if instance_type not in spec.instance_types:
        raise ConfigError(
            f"{where}.{key}: '{instance_type}' is not supported by {model}; "
            f"supported: {', '.join(sorted(spec.instance_types))}"
        )
    support = spec.instance_types[instance_type]
    artifacts = spec.regions[region]
    return DeploymentTarget(
        model_id=spec.model_id,
        version=spec.version,
        image_uri=artifacts.images[support.accelerator],
        artifact_uri=artifacts.artifact_uri,
        uncompressed=spec.uncompressed,
        environment=dict(spec.environment),
        instance_type=instance_type,
        instance_storage=support.instance_storage,
    )
