"""Models: the JumpStart embedding and LLM endpoints, from the committed table and the environment's sizing."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import EndpointConfig, EnvironmentConfig
from stacks.interface_drain import InterfaceDrain
from stacks.jumpstart.catalog import resolve
from stacks.lifecycle import log_retention, removal_policy
from stacks.model_endpoint import ModelEndpoint
from stacks.network_stack import NetworkStack

# all-MiniLM-L6-v2 on the sentence-similarity container line: one model (and one request contract) for every
# environment, with a CPU image (dev on ml.c6i.xlarge) and a GPU image (staging/prod).
EMBEDDING_MODEL = "HUGGINGFACE_SENTENCESIMILARITY_ALL_MINILM_L6_V2_2_1_21"
LLM_MODEL = "DEEPSEEK_LLM_R1_DISTILL_QWEN_7B_1_1_2"


class ModelsStack(cdk.Stack):
    """`embedding` always exists when enabled; `llm` is None where config disables it (dev)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        network: NetworkStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self._key = key
        vpc = self._vpc = network.vpc
        self._subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnets
        # Network-isolated containers make no calls; SageMaker uses the group for the model's VPC interfaces.
        self.security_group = ec2.SecurityGroup(
            self,
            "ModelSecurityGroup",
            vpc=vpc,
            description="SageMaker model interfaces: no inbound; HTTPS out for artifact and image downloads",
            allow_all_outbound=False,
        )
        network.allow_https_out(self.security_group, "the VPC's interface endpoints")
        self.embedding = self._endpoint("Embedding", "embedding", EMBEDDING_MODEL, config.models.embedding)
        self.llm = self._endpoint("Llm", "llm", LLM_MODEL, config.models.llm)
        # Deleted after the endpoints, before their execution roles and the group: SageMaker removes the endpoints'
        # interfaces from the group afterwards, with those roles.
        endpoints = [e for e in (self.embedding, self.llm) if e is not None]
        InterfaceDrain(
            self,
            "InterfaceDrain",
            security_group=self.security_group,
            owners=[e.deleted_first for e in endpoints],
            keep=[e.role for e in endpoints],
            key=key,
            config=config,
        )

    def _endpoint(self, construct_id: str, role: str, model_key: str, settings: EndpointConfig) -> ModelEndpoint | None:
        if not settings.enabled:
            return None
        config = self._config
        target = resolve(
            model_key,
            env=config.name,
            region=config.region,
            instance_type=settings.instance_type,
            key=f"models.{role}.instance_type",
        )
        return ModelEndpoint(
            self,
            construct_id,
            endpoint_name=f"{config.resource_prefix}-{role}",
            target=target,
            settings=settings,
            key=self._key,
            vpc=self._vpc,
            subnets=self._subnets,
            security_group=self.security_group,
            log_retention=log_retention(config.log_retention_days),
            removal=removal_policy(config),
        )
