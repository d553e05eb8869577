"""Typed, validated per-environment configuration.

Every value a stack needs comes from here. Values live in `cdk.json` context under `ragops`; they are
validated once, when the app starts, and errors name the environment and the key. No stack reads raw
context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
PROJECT = "ragops"
TAG_PROJECT = "ragops:project"
TAG_ENVIRONMENT = "ragops:environment"

S3_BUCKET_NAME_LIMIT = 63
SAGEMAKER_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
OPENSEARCH_INSTANCE = re.compile(r"^[a-z0-9]+\.[a-z0-9]+\.search$")


class ConfigError(ValueError):
    """Raised for any invalid environment configuration; the message names environment and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matching(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    """A validator refusing strings that do not fully match `pattern`, saying what was expected."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"'{value}' is not {expected}")
        return value

    return AfterValidator(check)


# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{value} is not a CloudWatch Logs retention period ({', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    return value


PositiveInt = Annotated[int, Field(gt=0)]
RetentionDays = Annotated[int, AfterValidator(_retention)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
SageMakerInstance = Annotated[
    str, _matching(SAGEMAKER_INSTANCE, "a SageMaker instance type (expected ml.<family>.<size>)")
]
OpenSearchInstance = Annotated[
    str, _matching(OPENSEARCH_INSTANCE, "an OpenSearch instance type (expected <family>.<size>.search)")
]
Cidr = Annotated[
    str, _matching(re.compile(r"\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])"), "an IPv4 CIDR between /16 and /24")
]
WeeklyWindow = Annotated[
    str,
    _matching(re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d"), "a weekly window like 'Sun:03:00'"),
]
EnvironmentName = Annotated[
    str, _matching(re.compile(r"[a-z][a-z0-9-]{1,15}"), "an environment name (2-16 lowercase letters, digits or '-')")
]
AccountId = Annotated[str, _matching(re.compile(r"\d{12}"), "a 12-digit AWS account id")]
RegionName = Annotated[str, _matching(re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d"), "an AWS region name")]


AvailabilityZoneId = Annotated[str, _matching(re.compile(r"[a-z]{2,5}\d-az\d{1,2}"), "an AZ ID such as use1-az1")]


class NetworkConfig(_Strict):
    """VPC shape. Subnets are private and isolated: AWS APIs are reached through VPC endpoints.

    Zones are given by AZ ID (`use1-az1`), not by name (`us-east-1a`): names map to different physical zones in each
    account, IDs do not, so the zones checked against each endpoint service's supported zones (docs/fresh-account.md)
    are the zones the subnets get."""

    cidr: Cidr = "10.40.0.0/16"
    availability_zone_ids: list[AvailabilityZoneId] = Field(min_length=2, max_length=6)
    flow_log_retention_days: RetentionDays = 30

    @field_validator("availability_zone_ids")
    @classmethod
    def _one_region(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"{value} names a zone twice")
        if len({zone.split("-az")[0] for zone in value}) != 1:
            raise ValueError(f"{value} are not all zones of one region (their prefixes differ)")
        return value


class StorageConfig(_Strict):
    noncurrent_version_expiration_days: PositiveInt = 30
    access_log_expiration_days: PositiveInt = 90


class OpenSearchConfig(_Strict):
    engine_version: str = "OpenSearch_2.19"
    instance_type: OpenSearchInstance = "t3.medium.search"
    instance_count: PositiveInt = 1
    zone_awareness_azs: Literal[1, 2, 3] = 1
    dedicated_master_type: OpenSearchInstance | None = None
    dedicated_master_count: int = Field(default=0, ge=0)
    volume_size_gib: PositiveInt = 20
    log_retention_days: RetentionDays = 30
    multi_az_with_standby: bool = False

    @field_validator("engine_version")
    @classmethod
    def _engine(cls, value: str) -> str:
        match = re.fullmatch(r"OpenSearch_(\d+)\.(\d+)", value)
        if not match or (int(match[1]), int(match[2])) < (2, 19):
            raise ValueError(f"'{value}' is not OpenSearch_2.19 or newer")
        return value

    @model_validator(mode="after")
    def _topology(self) -> OpenSearchConfig:
        if self.dedicated_master_count not in (0, 3, 5):
            raise ValueError("dedicated_master_count must be 0, 3 or 5")
        if self.dedicated_master_count and not self.dedicated_master_type:
            raise ValueError("dedicated_master_type is required when dedicated_master_count > 0")
        if self.instance_count % self.zone_awareness_azs:
            raise ValueError("instance_count must be a multiple of zone_awareness_azs")
        if self.instance_count == 2 and not self.dedicated_master_count:
            # Both nodes are master-eligible and a quorum of two needs both: one failed node stops the cluster.
            raise ValueError(
                "instance_count 2 without dedicated masters loses its cluster-manager quorum when one node fails; "
                "use 1 node (no high availability), 3 or more, or dedicated_master_count 3"
            )
        if self.multi_az_with_standby and (
            self.zone_awareness_azs != 3 or not self.dedicated_master_count or self.instance_type.startswith("t")
        ):
            raise ValueError("multi_az_with_standby needs zone_awareness_azs 3, dedicated masters and no t* instances")
        return self

    @property
    def engine_version_number(self) -> str:
        """The version CDK's `EngineVersion.open_search` takes, e.g. "2.19"."""
        return self.engine_version.removeprefix("OpenSearch_")


class EndpointConfig(_Strict):
    """One SageMaker real-time endpoint; autoscaling applies when max_instances > min_instances.

    `on_demand`: the stack keeps only the model and the endpoint config, which bill nothing; the first pipeline
    stage that needs the endpoint creates it from that config, and the clean-up hook deletes it once idle for
    `cleanup.endpoint_idle_ttl_hours`. Runs then wait for the endpoint to come up instead of paying for it idle.
    """

    enabled: bool = True
    on_demand: bool = False
    instance_type: SageMakerInstance
    initial_instance_count: PositiveInt = 1
    min_instances: PositiveInt = 1
    max_instances: PositiveInt = 1
    target_invocations_per_instance: PositiveInt = 100
    scale_in_cooldown_seconds: PositiveInt = 600
    scale_out_cooldown_seconds: PositiveInt = 120
    startup_health_check_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    model_data_download_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 1200

    @model_validator(mode="after")
    def _capacity(self) -> EndpointConfig:
        if not self.min_instances <= self.initial_instance_count <= self.max_instances:
            raise ValueError("need min_instances <= initial_instance_count <= max_instances")
        if self.on_demand and self.autoscaled:
            raise ValueError(
                "on_demand endpoints are created by a run and do not autoscale: set max_instances to min_instances"
            )
        return self

    @property
    def autoscaled(self) -> bool:
        return self.max_instances > self.min_instances


class LlmEndpointConfig(EndpointConfig):
    """The generator endpoint, with the answer budget its model needs (passed to the pipeline's run config).

    The deployed model is a DeepSeek-R1 distill: its `<think>` reasoning comes before the answer and runs to
    hundreds of tokens, so the run config's 256-token default leaves answers empty or cut. 1024 new tokens, with
    one retry at 2048 for a reply still cut inside `<think>`, is the budget; 0 turns the retry off.
    """

    max_answer_tokens: Annotated[int, Field(ge=1, le=8192)] = 1024
    reasoning_retry_max_tokens: Annotated[int, Field(ge=0, le=16384)] = 2048

    @model_validator(mode="after")
    def _retry_budget_is_larger(self) -> LlmEndpointConfig:
        if self.reasoning_retry_max_tokens and self.reasoning_retry_max_tokens <= self.max_answer_tokens:
            raise ValueError("reasoning_retry_max_tokens must be 0 (no retry) or more than max_answer_tokens")
        return self


class ModelsConfig(_Strict):
    embedding: EndpointConfig
    llm: LlmEndpointConfig


class ProcessingConfig(_Strict):
    """Processing jobs. `instance_count` is the sharded ingest step's (every other step runs on one instance);
    `generation_concurrency` the questions answered at once; `index_retention_hours` how long an execution's
    index version outlives it (unset: the longest an execution can run, see EnvironmentConfig)."""

    instance_type: SageMakerInstance = "ml.m5.xlarge"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    volume_size_gib: PositiveInt = 30
    max_runtime_seconds: Annotated[int, Field(ge=60, le=432000)] = 3600  # CreateProcessingJob's bounds: 5 days
    generation_concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    index_retention_hours: Annotated[int, Field(ge=1, le=8760)] | None = None


# SageMaker's pairing of managed tracking server versions with MLflow clients ("Integrate MLflow with your
# environment", docs.aws.amazon.com/sagemaker/latest/dg/mlflow-track-experiments.html): server -> client pin.
MLFLOW_CLIENTS = {"2.13.2": "2.13.2", "2.16.2": "2.16.2", "3.0": "3.0.0"}
IMAGE_LOCK = Path(__file__).resolve().parents[1] / "processing" / "constraints-image.txt"


def image_mlflow_client(lock: Path = IMAGE_LOCK) -> str:
    """The MLflow client the processing image installs: its lock's `mlflow==` pin."""
    for line in lock.read_text().splitlines():
        if line.startswith("mlflow=="):
            return line.removeprefix("mlflow==").strip()
    raise ConfigError(f"{lock.name}: no mlflow== pin")


class TrackingConfig(_Strict):
    server_size: Literal["Small", "Medium", "Large"] = "Small"
    mlflow_version: str = "3.0"
    weekly_maintenance_window: WeeklyWindow = "Sun:03:00"

    @field_validator("mlflow_version")
    @classmethod
    def _mlflow(cls, value: str) -> str:
        """The server must pair with the client the processing image runs, or runs log to a server they may not
        speak to correctly; the image is one per app, so every environment runs the same server line."""
        if value not in MLFLOW_CLIENTS:
            raise ValueError(f"'{value}' is not a managed MLflow version ({', '.join(MLFLOW_CLIENTS)})")
        client, image = MLFLOW_CLIENTS[value], image_mlflow_client()
        if client != image:
            paired = [server for server, pin in MLFLOW_CLIENTS.items() if pin == image]
            raise ValueError(
                f"tracking server {value} pairs with mlflow=={client}, but the processing image installs "
                f"mlflow=={image} ({IMAGE_LOCK.name}): use {' or '.join(paired) or 'a paired version'} "
                "or re-lock the image for this server"
            )
        return value


class PromotionConfig(_Strict):
    """Metrics (all in [0, 1], higher is better) an evaluation must reach to promote."""

    thresholds: dict[str, Fraction] = Field(min_length=1)
    next_environment: str | None = None


class CleanupConfig(_Strict):
    endpoint_idle_ttl_hours: PositiveInt = 24
    pipeline_execution_ttl_hours: PositiveInt = 12
    schedule_rate_hours: PositiveInt = 6
    dry_run: bool = False


EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class NotificationsConfig(_Strict):
    """Who hears about promotions, clean-ups and alarms: each address gets an SNS email subscription, which
    AWS confirms by mail before delivering anything."""

    email_addresses: tuple[Annotated[str, _matching(EMAIL_ADDRESS, "an email address")], ...] = ()


class BedrockConfig(_Strict):
    judge_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"


class HooksConfig(_Strict):
    """The promotion and clean-up Lambdas. `reserved_concurrency` caps each hook's concurrent runs; None (the
    default) reserves nothing, because Lambda refuses any reservation that would leave fewer than 100 unreserved
    executions, and new accounts start with a quota of 10."""

    reserved_concurrency: PositiveInt | None = None


class EnvironmentConfig(_Strict):
    name: EnvironmentName
    account: AccountId
    region: RegionName
    removal_policy: Literal["destroy", "retain"]
    network: NetworkConfig
    storage: StorageConfig = StorageConfig()
    opensearch: OpenSearchConfig = OpenSearchConfig()
    models: ModelsConfig
    processing: ProcessingConfig = ProcessingConfig()
    tracking: TrackingConfig = TrackingConfig()
    promotion: PromotionConfig
    cleanup: CleanupConfig = CleanupConfig()
    hooks: HooksConfig = HooksConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    bedrock: BedrockConfig = BedrockConfig()
    log_retention_days: RetentionDays = 30
    # Which deployment of this environment the names belong to. A `retain` environment's destroy leaves its
    # buckets, domain, tracking server and endpoint log groups under their names, so deploying it again needs
    # new names: raise `generation` (names gain "-g<n>") and the new deployment stands beside the old data.
    generation: Annotated[int, Field(ge=1, le=9)] = 1

    @model_validator(mode="after")
    def _enough_zones(self) -> EnvironmentConfig:
        if self.opensearch.zone_awareness_azs > len(self.network.availability_zone_ids):
            raise ValueError("opensearch.zone_awareness_azs exceeds the number of network.availability_zone_ids")
        return self

    @model_validator(mode="after")
    def _index_outlives_executions(self) -> EnvironmentConfig:
        """An execution can run until the clean-up stops it: its TTL plus one schedule period. A concurrent
        publish deletes index versions only past the retention, so the retention must cover that."""
        longest = self.longest_execution_hours
        retention = self.processing.index_retention_hours
        if retention is not None and retention < longest:
            raise ValueError(
                f"processing.index_retention_hours ({retention}) must be at least cleanup.pipeline_execution_ttl_hours"
                f" + cleanup.schedule_rate_hours ({longest}): a running execution's index would be deleted"
            )
        return self

    @property
    def longest_execution_hours(self) -> int:
        return self.cleanup.pipeline_execution_ttl_hours + self.cleanup.schedule_rate_hours

    @property
    def index_retention_hours(self) -> int:
        return self.processing.index_retention_hours or self.longest_execution_hours

    @model_validator(mode="after")
    def _names_fit(self) -> EnvironmentConfig:
        longest_bucket = f"{self.resource_prefix}-artifacts-{self.account}-{self.region}"
        if len(longest_bucket) > S3_BUCKET_NAME_LIMIT:
            raise ValueError(
                f"name/generation: bucket name '{longest_bucket}' is {len(longest_bucket)} characters, "
                f"over S3's {S3_BUCKET_NAME_LIMIT}; use a shorter environment name"
            )
        return self

    @property
    def destroy_on_delete(self) -> bool:
        return self.removal_policy == "destroy"

    @property
    def resource_prefix(self) -> str:
        """The start of every physical name: "ragops-prod", or "ragops-prod-g2" for a later generation."""
        suffix = f"-g{self.generation}" if self.generation > 1 else ""
        return f"{PROJECT}-{self.name}{suffix}"


GITHUB_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")


class CiCdConfig(_Strict):
    """The GitHub repository whose workflows may deploy, as the OIDC trust policies name it.

    `subject_prefix` is the part of the token's `sub` claim before `:environment:<env>` or `:pull_request`.
    It defaults to `repo:<owner>/<repo>`; repositories on immutable subject claims set it to
    `repo:<owner>@<owner-id>/<repo>@<repo-id>`, which a renamed or re-registered name cannot match.
    `existing_oidc_provider_accounts` lists the accounts that already trust GitHub's OIDC issuer (an account
    has at most one provider per issuer, so creating another fails with EntityAlreadyExists): there the
    stack imports the provider by its fixed ARN instead of creating it, and a destroy leaves it in place.
    `pull_request_environments` are the environments whose deployed templates pull requests may diff against:
    pull-request code runs with that trust, so it reaches no other environment (by default not staging or prod).
    """

    github_owner: str
    github_repo: str
    subject_prefix: str | None = None
    existing_oidc_provider_accounts: tuple[AccountId, ...] = ()
    pull_request_environments: tuple[str, ...] = ("dev",)
    bootstrap_qualifier: Annotated[
        str,
        _matching(re.compile(r"[A-Za-z0-9_-]{1,10}"), "a CDK bootstrap qualifier (1-10 letters, digits, '_' or '-')"),
    ] = "hnb659fds"

    @field_validator("github_owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        if not GITHUB_OWNER.fullmatch(value):
            raise ValueError(f"'{value}' is not a GitHub user or organization name")
        return value

    @field_validator("github_repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not GITHUB_REPO.fullmatch(value) or value in (".", ".."):
            raise ValueError(f"'{value}' is not a GitHub repository name")
        return value

    @model_validator(mode="after")
    def _prefix_names_the_repository(self) -> CiCdConfig:
        if self.subject_prefix is None:
            return self
        owner, repo = re.escape(self.github_owner), re.escape(self.github_repo)
        if not re.fullmatch(rf"repo:{owner}(@\d+)?/{repo}(@\d+)?", self.subject_prefix, flags=re.IGNORECASE):
            raise ValueError(
                f"subject_prefix '{self.subject_prefix}' must be 'repo:<owner>/<repo>' or "
                f"'repo:<owner>@<owner-id>/<repo>@<repo-id>' for {self.github_owner}/{self.github_repo}"
            )
        return self

    @property
    def subject(self) -> str:
        """The `sub` claim prefix every trust policy matches exactly."""
        return self.subject_prefix or f"repo:{self.github_owner}/{self.github_repo}"


class AppConfig(_Strict):
    """All environments, in promotion order, and the optional CI/CD trust settings."""

    environments: dict[str, EnvironmentConfig]
    cicd: CiCdConfig | None = None

    @model_validator(mode="after")
    def _promotion_chain(self) -> AppConfig:
        for name, env in self.environments.items():
            target = env.promotion.next_environment
            if target is not None and target not in self.environments:
                raise ValueError(f"environment '{name}': promotion.next_environment '{target}' is not defined")
        # The default names dev; where no dev exists, no account trusts pull requests. A value set is checked.
        listed = self.cicd.pull_request_environments if self.cicd else ()
        unknown = [n for n in listed if n not in self.environments]
        if unknown and "pull_request_environments" in self.cicd.model_fields_set:
            raise ValueError(f"cicd.pull_request_environments: {', '.join(unknown)} not defined")
        return self

    def select(self, names: list[str]) -> list[EnvironmentConfig]:
        unknown = [n for n in names if n not in self.environments]
        if unknown:
            raise ConfigError(
                f"context key 'environments': unknown environment(s) {', '.join(unknown)}; "
                f"defined: {', '.join(self.environments)}"
            )
        return [self.environments[n] for n in names]


def _describe(error: ValidationError, root: str) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        lines.append(f"{root}.{where}: {item['msg']}" if where else f"{root}: {item['msg']}")
    return "; ".join(lines)


def committed_context(*, bundling: bool = True) -> dict[str, Any]:
    """The context `cdk synth` passes from cdk.json; without bundling, asset builds (Docker) are skipped."""
    context = json.loads(CDK_JSON.read_text())["context"]
    return context if bundling else {**context, "aws:cdk:bundling-stacks": []}


def load_app_config(context: Mapping[str, Any]) -> AppConfig:
    """Validate the `ragops` context block; raise ConfigError naming `ragops.<env>.<key>`."""
    raw = context.get(PROJECT)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("environments"), Mapping):
        raise ConfigError(f"context key '{PROJECT}.environments' is missing or not an object")
    environments = {}
    for name, values in raw["environments"].items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"context key '{PROJECT}.environments.{name}' must be an object")
        try:
            environments[name] = EnvironmentConfig(name=name, **values)
        except ValidationError as error:
            raise ConfigError(_describe(error, f"environment '{name}': {PROJECT}.environments.{name}")) from None
        except TypeError as error:
            raise ConfigError(f"environment '{name}': {error}") from None
    try:
        return AppConfig(environments=environments, cicd=_load_cicd(raw.get("cicd")))
    except ValidationError as error:
        raise ConfigError(_describe(error, f"{PROJECT}.environments")) from None


def _load_cicd(raw: Any) -> CiCdConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context key '{PROJECT}.cicd' must be an object")
    try:
        return CiCdConfig(**raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, f"{PROJECT}.cicd")) from None
    except TypeError as error:
        raise ConfigError(f"{PROJECT}.cicd: {error}") from None


def selected_environments(context: Mapping[str, Any], config: AppConfig) -> list[EnvironmentConfig]:
    """Environments chosen with `-c environments=dev,staging` (default: all, in definition order)."""
    chosen = context.get("environments")
    if chosen is None:
        return list(config.environments.values())
    names = [n.strip() for n in chosen.split(",") if n.strip()] if isinstance(chosen, str) else []
    if not names:
        raise ConfigError("context key 'environments' must be a comma-separated list of environment names")
    return config.select(names)


def group_by_account(environments: list[EnvironmentConfig]) -> dict[str, list[EnvironmentConfig]]:
    """`environments` grouped by AWS account, in first-seen order: one CI/CD stack serves each account."""
    grouped: dict[str, list[EnvironmentConfig]] = {}
    for env in environments:
        grouped.setdefault(env.account, []).append(env)
    return grouped
