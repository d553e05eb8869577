"""One deployable environment: `cdk deploy "<env>/*"` deploys every stack of this stage."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.models_stack import ModelsStack
from stacks.network_stack import NetworkStack
from stacks.operations_stack import OperationsStack, hook_function_name
from stacks.pipeline_stack import PipelineInputs, PipelineStack
from stacks.storage_stack import StorageStack
from stacks.tagging import tag_environment
from stacks.tracking_stack import TrackingStack
from stacks.vector_store_stack import VectorStoreStack


class RagOpsStage(cdk.Stage):
    """The stacks of one environment, wired through typed props and tagged for clean-up and billing."""

    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.name, env=cdk.Environment(account=config.account, region=config.region))
        self.config = config
        self.storage = StorageStack(
            self, "Storage", config=config, description=f"RagOps {config.name}: KMS key and buckets"
        )
        self.network = NetworkStack(
            self,
            "Network",
            config=config,
            key=self.storage.key,
            project_buckets=[self.storage.data_bucket_name, self.storage.artifact_bucket_name],
            description=f"RagOps {config.name}: VPC and endpoints",
        )
        self.vector_store = VectorStoreStack(
            self,
            "VectorStore",
            config=config,
            key=self.storage.key,
            vpc=self.network.vpc,
            workload_security_group=self.network.workload_security_group,
            description=f"RagOps {config.name}: OpenSearch k-NN domain and the roles it admits",
        )
        self.models = ModelsStack(
            self,
            "Models",
            config=config,
            key=self.storage.key,
            network=self.network,
            description=f"RagOps {config.name}: JumpStart embedding and LLM endpoints",
        )
        self.tracking = TrackingStack(
            self,
            "Tracking",
            config=config,
            key=self.storage.key,
            artifact_bucket_name=self.storage.artifact_bucket_name,
            description=f"RagOps {config.name}: SageMaker managed MLflow tracking server",
        )
        self.tracking.add_stack_dependency(self.storage, "the server's artifact store is the artifact bucket")
        self.operations = OperationsStack(
            self,
            "Operations",
            config=config,
            key=self.storage.key,
            data_bucket=self.storage.data_bucket,
            description=f"RagOps {config.name}: promotion and clean-up hooks, notifications, alarms",
        )
        self.pipeline = PipelineStack(
            self,
            "Pipeline",
            config=config,
            inputs=PipelineInputs(
                key=self.storage.key,
                data_bucket_name=self.storage.data_bucket_name,
                artifact_bucket_name=self.storage.artifact_bucket_name,
                vpc=self.network.vpc,
                subnets=self.network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnets,
                workload_security_group=self.network.workload_security_group,
                role=self.vector_store.pipeline_role,
                domain_name=self.vector_store.domain_name,
                domain_endpoint=self.vector_store.domain_endpoint,
                embedding=self.models.embedding,
                llm=self.models.llm,
                tracking_server_arn=self.tracking.tracking_server_arn,
                promotion_function_name=hook_function_name(config, "promotion"),
            ),
            description=f"RagOps {config.name}: processing image and the single-/multi-step SageMaker pipelines",
        )
        # Deleted first, so the on-delete clean-up still finds the pipelines whose executions it stops.
        self.operations.add_dependency(self.pipeline, "clean-up on delete must run while the pipelines exist")
        # Stated, not left to the Pipeline stack's references: the run-time endpoints the clean-up deletes run on
        # the Models stack's endpoint configs, in its network, so they must be gone before that stack goes.
        self.operations.add_dependency(self.models, "clean-up on delete removes the endpoints on the models' configs")
        tag_environment(self, config.name)
