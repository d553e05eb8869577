"""One SageMaker real-time endpoint for a JumpStart model: role, model, endpoint config, endpoint, scaling."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.config import EndpointConfig
from stacks.iam_statements import ecr_pull_statements, network_interfaces, vpc_interface_statements
from stacks.jumpstart.catalog import DeploymentTarget
from stacks.nag import acknowledge, acknowledge_wildcard_resource

VARIANT = "AllTraffic"
# Why an endpoint config on an instance with local NVMe storage carries no KmsKeyId (and SM2 is acknowledged there).
# botocore 1.44.8's CreateEndpointConfig model (KmsKeyId) says the key "does not encrypt instance local storage"
# on such instances; the AWS SDK references generated from earlier models, sagemaker-core's and CloudFormation's
# resource reference still say "If you specify a value for KmsKeyId when using any nitro-based instances with local
# storage, the call to CreateEndpointConfig fails". The safe side: a failed deploy costs more than a key that
# would encrypt nothing there.
INSTANCE_STORAGE_REASON = (
    "the instance type has local NVMe instance storage, which its hardware encrypts; SageMaker attaches no ML "
    "storage volume for a KMS key to encrypt, and CreateEndpointConfig is documented to fail when KmsKeyId is "
    "given for such an instance"
)


def container(target: DeploymentTarget) -> sagemaker.CfnModel.ContainerDefinitionProperty:
    """Uncompressed (S3 prefix) artifacts are mounted as they are; a .tar.gz is unpacked by SageMaker."""
    if target.uncompressed:
        source = sagemaker.CfnModel.ModelDataSourceProperty(
            s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                s3_uri=target.artifact_uri, s3_data_type="S3Prefix", compression_type="None"
            )
        )
        return sagemaker.CfnModel.ContainerDefinitionProperty(
            image=target.image_uri, model_data_source=source, environment=target.environment
        )
    return sagemaker.CfnModel.ContainerDefinitionProperty(
        image=target.image_uri, model_data_url=target.artifact_uri, environment=target.environment
    )


class ModelEndpoint(Construct):
    """A network-isolated model in the VPC behind an endpoint; `name`, `arn` and `role` are for consumers.

    An on-demand one (`settings.on_demand`) has no endpoint in the stack: runs create it from `config_name`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        target: DeploymentTarget,
        settings: EndpointConfig,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: list[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        removal: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # SageMaker writes endpoint logs here; created up front so they are encrypted and expire.
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            encryption_key=key,
            retention=log_retention,
            removal_policy=removal,
        )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{endpoint_name}: read {target.model_id} {target.version} from JumpStart, run in the VPC",
        )
        for statement in _execution_statements(stack, target, key, log_group, vpc, subnets, security_group):
            self.role.add_to_policy(statement)
        self._acknowledge_wildcards(stack, target)

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            enable_network_isolation=True,
            primary_container=container(target),
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=[subnet.subnet_id for subnet in subnets], security_group_ids=[security_group.security_group_id]
            ),
        )
        self.model.node.add_dependency(self.role)  # the policy must exist before SageMaker reads the artifacts

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            # The project key encrypts the ML storage volume of instances that have one. On instances with local
            # NVMe storage (the catalog's `instance_storage`) there is no such volume: the key is left off.
            kms_key_id=None if target.instance_storage else key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    instance_type=target.instance_type,
                    initial_instance_count=settings.initial_instance_count,
                    initial_variant_weight=1,
                    model_data_download_timeout_in_seconds=settings.model_data_download_timeout_seconds,
                    container_startup_health_check_timeout_in_seconds=settings.startup_health_check_timeout_seconds,
                )
            ],
        )
        if target.instance_storage:
            acknowledge(self.endpoint_config, "AwsSolutions-SM2", INSTANCE_STORAGE_REASON)
        self.name = endpoint_name  # fixed at synth, so consumers can use it as a literal
        self.on_demand = settings.on_demand
        # The endpoint config's ARN (its Ref) and generated name: what a run creates an on-demand endpoint from.
        self.config_arn = self.endpoint_config.ref
        self.config_name = self.endpoint_config.attr_endpoint_config_name
        self.endpoint: sagemaker.CfnEndpoint | None = None
        if settings.on_demand:
            # SageMaker lower-cases names in ARNs; the name is a literal, so the ARN is known at synth.
            self.arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())
            return
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config_name,
            # Under autoscaling the variant's instance count belongs to Application Auto Scaling: without this,
            # every deploy that touches the endpoint resets it to initial_instance_count.
            retain_all_variant_properties=True if settings.autoscaled else None,
        )
        self.endpoint.node.add_dependency(log_group)
        self.arn = self.endpoint.attr_endpoint_arn
        if settings.autoscaled:
            self._scale_on_invocations(settings, self.endpoint)

    @property
    def deleted_first(self) -> cdk.CfnResource:
        """What goes before the interface drain: the endpoint, or for an on-demand one (which a run created and the
        clean-up hook deleted) the model its interfaces were made for."""
        return self.endpoint or self.model

    def _acknowledge_wildcards(self, stack: cdk.Stack, target: DeploymentTarget) -> None:
        acknowledge_wildcard_resource(
            self.role,
            artifact_objects(stack, target),
            f"the model reads every object under its JumpStart artifact prefix ({target.model_id} {target.version}, "
            "an uncompressed S3 prefix); nothing outside that prefix",
        )
        acknowledge_wildcard_resource(
            self.role,
            network_interfaces(stack),
            "SageMaker creates the model's VPC interfaces at deploy time, so their ids are unknown; deleting and "
            "permitting them is limited to interfaces in this VPC by the ec2:Vpc condition",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "only for ecr:GetAuthorizationToken, cloudwatch:PutMetricData (bounded by a namespace condition) and "
            "ec2:Describe*, which IAM authorizes on '*' only; every other action names its resource",
        )

    def _scale_on_invocations(self, settings: EndpointConfig, endpoint: sagemaker.CfnEndpoint) -> None:
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.min_instances,
            max_capacity=settings.max_instances,
            # The service-linked role Application Auto Scaling creates for SageMaker variants, not a new role.
            role=iam.Role.from_role_arn(
                self,
                "ScalingRole",
                cdk.Stack.of(self).format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                ),
                mutable=False,
            ),
        )
        target.node.add_dependency(endpoint)  # the variant must exist before it can be registered
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=settings.target_invocations_per_instance,
            scale_in_cooldown=cdk.Duration.seconds(settings.scale_in_cooldown_seconds),
            scale_out_cooldown=cdk.Duration.seconds(settings.scale_out_cooldown_seconds),
        )


def _execution_statements(
    stack: cdk.Stack,
    target: DeploymentTarget,
    key: kms.IKey,
    log_group: logs.ILogGroup,
    vpc: ec2.IVpc,
    subnets: list[ec2.ISubnet],
    security_group: ec2.ISecurityGroup,
) -> list[iam.PolicyStatement]:
    """Least privilege for one model: its JumpStart objects, its image, its logs, the key, its VPC interfaces."""
    return [
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[artifact_objects(stack, target)]),
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[f"arn:{stack.partition}:s3:::{target.artifact_bucket}"],
            conditions={"StringLike": {"s3:prefix": [f"{target.artifact_key}*"]}},
        ),
        *ecr_pull_statements(target.image_repository_arn(stack.partition)),
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_group.log_group_arn],  # the group's ARN ends in ":*", covering its streams
        ),
        # PutMetricData has no resource-level permissions ("*" only); the namespace condition bounds it.
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
        iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], resources=[key.key_arn]),
        *vpc_interface_statements(stack, vpc, subnets, security_group),
    ]


def artifact_objects(stack: cdk.Stack, target: DeploymentTarget) -> str:
    return f"arn:{stack.partition}:s3:::{target.artifact_bucket}/{target.artifact_key}*"
