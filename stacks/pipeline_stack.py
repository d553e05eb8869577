"""The SageMaker pipelines (single- and multi-step), their processing image, their role's permissions, and
the Bedrock roles the pipeline's judge and Custom Model Import generator need.

`cdk deploy` versions the pipeline definitions together with the image they run: the image asset's URI is
the default of the `ImageUri` parameter, and the stage list comes from the registry the local runner uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from processing.backends.cloud import ON_DEMAND_FIELDS
from processing.backends.names import LOGPROB_ALTERNATIVES
from processing.backends.on_demand import CREATED_BY_TAG, ON_DEMAND_CREATOR
from processing.pipelines.identity import ENVIRONMENT_VARIABLE
from processing.pipelines.parameters import DATASET_URI, IMAGE_URI, VARIANTS, pipeline_name
from stacks.config import PROJECT, TAG_ENVIRONMENT, TAG_PROJECT, EnvironmentConfig
from stacks.iam_statements import ecr_pull_statements, vpc_interface_statements
from stacks.interface_drain import InterfaceDrain
from stacks.lifecycle import encrypted_log_group, removal_policy
from stacks.model_endpoint import ModelEndpoint
from stacks.nag import acknowledge_wildcard_resource
from stacks.pipeline_definition import JobSettings, PipelineSpec, pipeline_definition
from stacks.pipeline_orchestration import Orchestration, pipeline_role
from stacks.service_actions import BEDROCK_INVOKE_ACTIONS, ENDPOINT_INVOKE_ACTIONS, LOG_WRITE_ACTIONS, MLFLOW_ACTIONS
from stacks.shared_log_group import SharedLogGroupRetention
from stacks.tracking_stack import ARTIFACT_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[1]
# The image's build context is the repository root, reduced to what the Dockerfile copies.
IMAGE_CONTEXT = ["**", "!processing/**", "**/__pycache__", "processing/**/*.pyc"]
RUN_PREFIXES = ("runs", "datasets")
PROCESSING_JOB_LOGS = "/aws/sagemaker/ProcessingJobs"  # SageMaker's name, shared by the account's jobs
MODEL_IMPORT_PREFIX = "model-import"
# PyTorch's CPU wheel index: pip then takes torch==2.13.0+cpu, which sorts above the CUDA build of 2.13.0.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class PipelineInputs:
    """What the pipeline uses from the other stacks of its environment."""

    key: kms.IKey
    data_bucket_name: str
    artifact_bucket_name: str
    vpc: ec2.IVpc
    subnets: list[ec2.ISubnet]
    workload_security_group: ec2.ISecurityGroup
    role: iam.IRole
    domain_name: str
    domain_endpoint: str
    embedding: ModelEndpoint
    llm: ModelEndpoint | None
    tracking_server_arn: str
    promotion_function_name: str | None  # by name, so this stack does not depend on the operations stack


class PipelineStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, inputs: PipelineInputs, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self._inputs = inputs
        self.image = ecr_assets.DockerImageAsset(
            self,
            "ProcessingImage",
            directory=str(REPO_ROOT),
            file="processing/Dockerfile",
            exclude=IMAGE_CONTEXT,
            ignore_mode=cdk.IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
            # The processing jobs run on CPU instances: torch's CPU wheel, not the public index's CUDA build
            # (which pulls several GB of cuDNN/cuBLAS into the image).
            build_args={"TORCH_INDEX_URL": TORCH_CPU_INDEX},
        )
        self.execution_policy = self._execution_policy()
        data = self._bucket_arn(inputs.data_bucket_name)
        self.pipeline_role = pipeline_role(
            self,
            "PipelineRole",
            Orchestration(
                job_role=inputs.role,
                processing_jobs_arn=self._arn("sagemaker", "processing-job", "pipelines-*"),
                reports_arn=f"{data}/runs/*",
                key_arn=inputs.key.key_arn,
                promotion_function_arn=self._promotion_arn() if inputs.promotion_function_name else None,
            ),
            f"{config.resource_prefix}: the pipelines run their processing jobs and call the promotion hook",
        )
        self.pipelines = {variant: self._pipeline(variant) for variant in VARIANTS}
        self.model_import_role = self._model_import_role()
        self.imported_model_invoke_policy = self._imported_model_invoke_policy()
        # The job role stays with a `retain` environment's domain (its fine-grained-access master), and so do the
        # policies attached to it.
        for policy in (self.execution_policy, self.imported_model_invoke_policy):
            policy.apply_removal_policy(removal_policy(config))
        # Deleted after the pipelines, before the job role's EC2 permissions: a processing job's interfaces in the
        # workload group go minutes after the job, with that role, and the network stack (deleted after this one)
        # can only delete the group once they are gone (DependencyViolation otherwise).
        InterfaceDrain(
            self,
            "InterfaceDrain",
            security_group=inputs.workload_security_group,
            owners=list(self.pipelines.values()),
            keep=[self.execution_policy],
            key=inputs.key,
            config=config,
        )
        SharedLogGroupRetention(
            self,
            "ProcessingJobLogRetention",
            log_group_name=PROCESSING_JOB_LOGS,
            retention_days=config.log_retention_days,
            logs_of_calls=encrypted_log_group(self, "ProcessingJobLogRetentionLogs", inputs.key, config),
        )

    def _arn(self, service: str, resource: str, name: str, *, region: str | None = None, account: str | None = None):
        return self.format_arn(
            service=service,
            resource=resource,
            resource_name=name,
            region=region,
            account=account,
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _domain_arn(self) -> str:
        return self._arn("es", "domain", self._inputs.domain_name)

    def _bucket_arn(self, name: str) -> str:
        return f"arn:{self.partition}:s3:::{name}"

    def _judge_model_arn(self) -> str:
        return self._arn("bedrock", "foundation-model", self._config.bedrock.judge_model_id, account="")

    def _statements(self) -> list[iam.PolicyStatement]:
        inputs = self._inputs
        data = self._bucket_arn(inputs.data_bucket_name)
        artifacts = self._bucket_arn(inputs.artifact_bucket_name)
        endpoints = [inputs.embedding.arn] + ([inputs.llm.arn] if inputs.llm else [])
        statements = [
            *ecr_pull_statements(self.image.repository.repository_arn),
            *vpc_interface_statements(self, inputs.vpc, inputs.subnets, inputs.workload_security_group),
            iam.PolicyStatement(
                actions=list(LOG_WRITE_ACTIONS),
                resources=[self._log_group_arn()],
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[f"{data}/{p}/*" for p in RUN_PREFIXES]
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data],
                conditions={"StringLike": {"s3:prefix": [f"{p}/*" for p in RUN_PREFIXES]}},
            ),
            # MLflow's client writes run artifacts straight into the tracking server's artifact store.
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[f"{artifacts}/{ARTIFACT_PREFIX}/*"]
            ),
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                resources=[inputs.key.key_arn],
            ),
            iam.PolicyStatement(actions=list(ENDPOINT_INVOKE_ACTIONS), resources=endpoints),
            iam.PolicyStatement(
                actions=["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"],
                resources=[self._domain_arn(), f"{self._domain_arn()}/*"],
            ),
            iam.PolicyStatement(actions=list(MLFLOW_ACTIONS), resources=[inputs.tracking_server_arn]),
            iam.PolicyStatement(actions=list(BEDROCK_INVOKE_ACTIONS), resources=[self._judge_model_arn()]),
        ]
        statements += self._on_demand_statements()
        return statements

    def _on_demand(self) -> list[ModelEndpoint]:
        return [e for e in (self._inputs.embedding, self._inputs.llm) if e is not None and e.on_demand]

    def _config_field(self, endpoint: ModelEndpoint) -> str:
        """The run-config field a run brings `endpoint` up from (processing/backends/cloud.py's table)."""
        return ON_DEMAND_FIELDS["generator" if endpoint is self._inputs.llm else "embeddings"][1]

    def _on_demand_statements(self) -> list[iam.PolicyStatement]:
        """A run creates an on-demand endpoint from its config (tagged for the clean-up hook) or moves it to the
        config a later deploy made; it may do so for this environment's endpoints only, and tag nothing else."""
        on_demand = self._on_demand()
        if not on_demand:
            return []
        endpoints = [e.arn for e in on_demand]
        both = [*endpoints, *(e.config_arn for e in on_demand)]
        # The creator tag is the clean-up hook's positive mark (stacks/cleanup_permissions.py): a run may create an
        # endpoint only with it, and may put it on nothing but this environment's on-demand endpoints.
        tags = {
            "StringEquals": {
                f"aws:RequestTag/{TAG_PROJECT}": PROJECT,
                f"aws:RequestTag/{TAG_ENVIRONMENT}": self._config.name,
                f"aws:RequestTag/{CREATED_BY_TAG}": ON_DEMAND_CREATOR,
            }
        }
        tag_keys = {"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_PROJECT, TAG_ENVIRONMENT, CREATED_BY_TAG]}}
        return [
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=endpoints),
            iam.PolicyStatement(actions=["sagemaker:CreateEndpoint"], resources=both, conditions=tags),
            iam.PolicyStatement(actions=["sagemaker:UpdateEndpoint"], resources=both),
            iam.PolicyStatement(actions=["sagemaker:AddTags"], resources=endpoints, conditions={**tags, **tag_keys}),
        ]

    def _promotion_arn(self) -> str:
        return self.format_arn(
            service="lambda",
            resource="function",
            resource_name=self._inputs.promotion_function_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _log_group_arn(self) -> str:
        return self.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{PROCESSING_JOB_LOGS}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def _execution_policy(self) -> iam.Policy:
        policy = iam.Policy(self, "ExecutionPolicy", roles=[self._inputs.role], statements=self._statements())
        data = self._bucket_arn(self._inputs.data_bucket_name)
        wildcards = {
            "*": "ecr:GetAuthorizationToken and the EC2 Describe* calls SageMaker makes for VPC jobs accept only '*'",
            f"{data}/runs/*": "each execution writes under runs/<execution id>/, a key known only at run time",
            f"{data}/datasets/*": "datasets are uploaded by operators under datasets/; the pipeline reads them",
            f"{self._bucket_arn(self._inputs.artifact_bucket_name)}/{ARTIFACT_PREFIX}/*": (
                "MLflow run artifact keys are created at run time under the tracking server's prefix"
            ),
            f"{self._domain_arn()}/*": "OpenSearch HTTP paths (indices, _bulk, _aliases) are chosen at run time",
            self._log_group_arn(): "processing jobs write their logs to streams SageMaker names per job",
            self._arn("ec2", "network-interface", "*"): (
                "network interfaces of VPC jobs are created by SageMaker at run time; deletion is bounded to our VPC"
            ),
        }
        for resource, reason in wildcards.items():
            acknowledge_wildcard_resource(policy, resource, reason)
        return policy

    def _pipeline(self, variant: str) -> sagemaker.CfnPipeline:
        config, inputs = self._config, self._inputs
        spec = PipelineSpec(
            environment=config.name,
            variant=variant,
            job=JobSettings(
                role_arn=inputs.role.role_arn,
                data_bucket=inputs.data_bucket_name,
                kms_key_arn=inputs.key.key_arn,
                subnet_ids=[subnet.subnet_id for subnet in inputs.subnets],
                security_group_ids=[inputs.workload_security_group.security_group_id],
                instance_type=config.processing.instance_type,
                instance_count=config.processing.instance_count,
                volume_size_gib=config.processing.volume_size_gib,
                max_runtime_seconds=config.processing.max_runtime_seconds,
                # botocore reads AWS_DEFAULT_REGION (MLflow's S3 artifact client relies on it); AWS_REGION for the rest.
                environment={
                    ENVIRONMENT_VARIABLE: config.name,  # named in the evaluation report (pipelines/identity.py)
                    "MLFLOW_TRACKING_URI": inputs.tracking_server_arn,
                    "AWS_REGION": config.region,
                    "AWS_DEFAULT_REGION": config.region,
                },
            ),
            defaults=self._parameter_defaults(),
            stand_ins=self._parameter_stand_ins(),
            promotion_function_arn=self._promotion_arn() if inputs.promotion_function_name else None,
        )
        pipeline = sagemaker.CfnPipeline(
            self,
            f"{variant.title()}StepPipeline",
            pipeline_name=pipeline_name(config.name, variant),
            pipeline_display_name=pipeline_name(config.name, variant),
            pipeline_description=f"RagOps {config.name}: {variant}-step RAG pipeline with a promotion gate",
            role_arn=self.pipeline_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": self.to_json_string(pipeline_definition(spec))},
        )
        # Both roles must hold their permissions first.
        pipeline.node.add_dependency(self.execution_policy, self.pipeline_role)
        return pipeline

    def _parameter_defaults(self) -> dict[str, object]:
        """This environment's run-config defaults: its endpoints, domain, judge and thresholds; plus provenance."""
        config, inputs = self._config, self._inputs
        thresholds = config.promotion.thresholds
        # Without an LLM endpoint (dev) the extractive baseline answers: the run config's default, the local
        # llama-server, exists only on a developer machine, not in the processing image.
        generator = self._generator_defaults(inputs.llm) if inputs.llm else {"generator": "extractive"}
        # On-demand endpoints are brought up by the first stage that needs them, from the stack's endpoint config.
        on_demand = {self._config_field(endpoint): endpoint.config_name for endpoint in self._on_demand()}
        return {
            "experiment_name": f"{config.resource_prefix}-pipeline",
            "aws_region": config.region,
            "embeddings": "sagemaker",
            "sagemaker_embedding_endpoint": inputs.embedding.name,
            "sagemaker_embedding_payload": "jumpstart",
            "vector_store": "opensearch",
            "opensearch_endpoint": inputs.domain_endpoint,
            "opensearch_replicas": config.opensearch.zone_awareness_azs - 1,
            **generator,
            **on_demand,
            **({"environment_name": config.name} if on_demand else {}),
            "judge": "bedrock",
            "judge_model_id": config.bedrock.judge_model_id,
            "min_hit_at_k": thresholds.get("hit_at_k", 0.0),
            "min_mrr": thresholds.get("mrr", 0.0),
            "min_answer_embedding_cosine": thresholds.get("answer_embedding_cosine", 0.0),
            "generation_concurrency": config.processing.generation_concurrency,
            "ingest_instances": config.processing.instance_count,
            "index_retention_hours": config.index_retention_hours,
            IMAGE_URI: self.image.image_uri,
            DATASET_URI: f"s3://{inputs.data_bucket_name}/datasets/",
        }

    def _generator_defaults(self, endpoint: ModelEndpoint) -> dict[str, object]:
        """The TGI endpoint with its model's answer budget, and as many alternatives per token as TGI returns."""
        llm = self._config.models.llm
        return {
            "generator": "sagemaker-tgi",
            "generator_endpoint": endpoint.name,
            "top_logprobs": LOGPROB_ALTERNATIVES["sagemaker-tgi"],
            "max_answer_tokens": llm.max_answer_tokens,
            "reasoning_retry_max_tokens": llm.reasoning_retry_max_tokens,
        }

    def _parameter_stand_ins(self) -> dict[str, str]:
        """Same-form values to validate deploy-time tokens with (AWS assigns the domain endpoint)."""
        return {
            "opensearch_endpoint": f"vpc-{self._inputs.domain_name}.{self._config.region}.es.amazonaws.com",
            **{self._config_field(e): f"{e.name}-config" for e in self._on_demand()},
        }

    def _model_import_role(self) -> iam.Role:
        """The role Bedrock Custom Model Import assumes to read model weights from our bucket, for us only."""
        account = self._config.account
        import_jobs = self._arn("bedrock", "model-import-job", "*")
        role = iam.Role(
            self,
            "ModelImportRole",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": import_jobs},
                },
            ),
            description=f"{self._config.resource_prefix}: Bedrock Custom Model Import reads {MODEL_IMPORT_PREFIX}/",
        )
        data = self._bucket_arn(self._inputs.data_bucket_name)
        objects = f"{data}/{MODEL_IMPORT_PREFIX}/*"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data],
                conditions={"StringLike": {"s3:prefix": [f"{MODEL_IMPORT_PREFIX}/*"]}},
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self._inputs.key.key_arn]))
        acknowledge_wildcard_resource(
            role, objects, f"model weight files are read from the {MODEL_IMPORT_PREFIX}/ prefix, named per import"
        )
        return role

    def _imported_model_invoke_policy(self) -> iam.Policy:
        """Lets the pipeline call models imported into this account (the log-probability generator)."""
        imported = self._arn("bedrock", "imported-model", "*")
        policy = iam.Policy(
            self,
            "InvokeImportedModels",
            roles=[self._inputs.role],
            statements=[iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=[imported])],
        )
        acknowledge_wildcard_resource(
            policy, imported, "imported model ids are assigned by Bedrock at import; the ARN fixes account and region"
        )
        return policy
