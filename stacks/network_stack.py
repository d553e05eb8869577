"""Network: an isolated VPC whose workloads reach AWS APIs only through VPC endpoints."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks import service_actions as actions
from stacks.config import EnvironmentConfig
from stacks.endpoint_policies import interface_statement, mlflow_tracking_servers, s3_gateway_statements
from stacks.lifecycle import encrypted_log_group, log_provider_calls, log_retention, removal_policy
from stacks.nag import acknowledge, acknowledge_sdk_call_function

# Interface endpoints the design names, with the actions each admits (those our roles are granted). No NAT
# gateway exists, so every AWS API a processing job, endpoint or domain client calls must appear here (ECR for
# the processing image pull).
# aws-cdk-lib's provider behind `restrict_default_security_group` (one per stack).
RESTRICT_DEFAULT_GROUP_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
Service = ec2.InterfaceVpcEndpointAwsService
INTERFACE_ENDPOINTS: dict[str, tuple[ec2.InterfaceVpcEndpointAwsService, tuple[str, ...]]] = {
    "SageMakerApi": (Service.SAGEMAKER_API, actions.SAGEMAKER_API_ACTIONS),
    "SageMakerRuntime": (Service.SAGEMAKER_RUNTIME, actions.ENDPOINT_INVOKE_ACTIONS),
    "SageMakerExperiments": (Service.SAGEMAKER_EXPERIMENTS, actions.MLFLOW_ACTIONS),
    "BedrockRuntime": (Service.BEDROCK_RUNTIME, actions.BEDROCK_INVOKE_ACTIONS),
    "Sts": (Service.STS, actions.STS_ACTIONS),
    "CloudWatchLogs": (Service.CLOUDWATCH_LOGS, actions.LOG_WRITE_ACTIONS),
    "EcrApi": (Service.ECR, actions.ECR_PULL_ACTIONS),
    "EcrDocker": (Service.ECR_DOCKER, actions.ECR_PULL_ACTIONS),
}


class NetworkStack(cdk.Stack):
    """VPC with private isolated subnets, S3 gateway endpoint, interface endpoints and flow logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        project_buckets: list[str],
        **kwargs,
    ) -> None:
        self._availability_zones = list(config.network.availability_zone_ids)
        self._cidr = config.network.cidr
        super().__init__(scope, construct_id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.network.cidr),
            availability_zones=self._availability_zones,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="workloads", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20),
            ],
            restrict_default_security_group=True,
        )
        self.workload_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for subnet in self.vpc.isolated_subnets:
            # CDK takes zone names; the config's AZ IDs stand in for them at synth and are rendered as what they
            # are (AWS::EC2::Subnet's registry schema: AvailabilityZoneId, "the AZ ID of the subnet").
            subnet.node.default_child.add_property_deletion_override("AvailabilityZone")
            subnet.node.default_child.add_property_override("AvailabilityZoneId", subnet.availability_zone)
        self._keep_what_a_kept_domain_needs(config)
        log_provider_calls(self, RESTRICT_DEFAULT_GROUP_PROVIDER, key, config)

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=log_retention(config.network.flow_log_retention_days),
            removal_policy=removal_policy(config),
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        s3_gateway = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.workload_subnets]
        )
        for statement in s3_gateway_statements(project_buckets, config.region, self.partition):
            s3_gateway.add_to_policy(statement)
        self.s3_prefix_list_id = self._s3_prefix_list_id(key, config)
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from inside the VPC to AWS interface endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.network.cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        # The identity of the pipeline's processing jobs: the vector store admits HTTPS from this group only.
        # It lives here, with the VPC, so that the domain (vector store) and the jobs (pipeline) both refer to
        # it without either of those stacks depending on the other for a network identity.
        self.workload_security_group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            description="Pipeline processing jobs: HTTPS out to the domain, interface endpoints and S3",
            allow_all_outbound=False,
        )
        self.allow_https_out(self.workload_security_group, "the interface endpoints and the domain")
        for name, (service, admitted) in INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.workload_subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,  # the security group above already admits HTTPS from the VPC CIDR
            )
            # SageMaker documents the MLflow endpoint's policy with this account's tracking servers as resource.
            resource = mlflow_tracking_servers(self) if name == "SageMakerExperiments" else "*"
            endpoint.add_to_policy(interface_statement(admitted, account=config.account, resource=resource))

    def _keep_what_a_kept_domain_needs(self, config: EnvironmentConfig) -> None:
        """A `retain` environment's destroy keeps its OpenSearch domain, whose interfaces sit in these subnets: the
        subnets and the VPC stay with it (the endpoints, route tables and groups go). The restriction of the VPC's
        default security group stays too: deleted, CDK's handler would authorize the default rules again."""
        removal = removal_policy(config)
        self.vpc.apply_removal_policy(removal)
        for subnet in self.vpc.isolated_subnets:
            subnet.node.default_child.apply_removal_policy(removal)
        restriction = self.vpc.node.find_child("RestrictDefaultSecurityGroupCustomResource")
        restriction.node.default_child.apply_removal_policy(removal)

    def allow_https_out(self, group: ec2.SecurityGroup, inside: str) -> None:
        """HTTPS to the VPC (interface endpoints, domain) and to S3 through the gateway, and nowhere else."""
        group.add_egress_rule(ec2.Peer.ipv4(self._cidr), ec2.Port.tcp(443), f"HTTPS to {inside}")
        group.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), ec2.Port.tcp(443), "HTTPS to S3 through the gateway endpoint"
        )

    def _s3_prefix_list_id(self, key: kms.IKey, config: EnvironmentConfig) -> str:
        """The id of AWS's managed prefix list for S3 in this region, which gateway traffic is addressed to.

        The id differs per region and account partition and no CloudFormation attribute exposes it, so it is read
        at deploy time (a synth-time lookup would need credentials).
        """
        name = f"com.amazonaws.{config.region}.s3"
        lookup = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_update=cr.AwsSdkCall(  # also runs on create
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
                physical_resource_id=cr.PhysicalResourceId.of(name),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            # DescribeManagedPrefixLists has no resource-level permissions.
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
            log_group=encrypted_log_group(self, "S3PrefixListLogs", key, config),
        )
        acknowledge(
            lookup,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists is a read-only call IAM authorizes on '*' only",
        )
        acknowledge_sdk_call_function(self, "one read-only call: DescribeManagedPrefixLists")
        return lookup.get_response_field("PrefixLists.0.PrefixListId")

    @property
    def availability_zones(self) -> list[str]:
        """The zones from config (AZ IDs), so synth never looks them up in the account (no credentials needed)."""
        return self._availability_zones
