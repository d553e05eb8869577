"""Vector store: an OpenSearch domain (k-NN built in) inside the VPC, reachable only by two IAM roles."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.interface_drain import InterfaceDrain
from stacks.lifecycle import keep_with_policies, log_retention, removal_policy
from stacks.nag import acknowledge
from stacks.service_linked_role import ServiceLinkedRole

DOMAIN_LOGS = ("app", "slow_search", "slow_index", "audit")
OPENSEARCH_SERVICE = "opensearchservice.amazonaws.com"
SERVICE_LINKED_ROLE = "AWSServiceRoleForAmazonOpenSearchService"


class VectorStoreStack(cdk.Stack):
    """The domain plus the roles its access policy names.

    `pipeline_role` is created here without policies: the domain access policy must name it when the domain
    is created, while the pipeline stack attaches the role's permissions through a policy it owns.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        vpc: ec2.IVpc,
        workload_security_group: ec2.ISecurityGroup,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.opensearch
        removal = removal_policy(config)
        self.domain_name = config.resource_prefix
        domain_arn = self.format_arn(service="es", resource="domain", resource_name=self.domain_name)

        self.pipeline_role = iam.Role(
            self,
            "PipelineRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{config.resource_prefix}: SageMaker pipeline and processing jobs (policies: pipeline stack)",
        )
        self.operator_role = iam.Role(
            self,
            "OperatorRole",
            assumed_by=iam.AccountRootPrincipal().with_conditions({"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
            description=f"{config.resource_prefix}: OpenSearch operator in the domain access policy (MFA required)",
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "DomainSecurityGroup",
            vpc=vpc,
            description="OpenSearch domain: HTTPS from pipeline processing jobs only",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(workload_security_group, ec2.Port.tcp(443), "HTTPS from processing jobs")

        log_groups = {
            name: logs.LogGroup(
                self,
                f"{name.title().replace('_', '')}Logs",
                encryption_key=key,
                retention=log_retention(settings.log_retention_days),
                removal_policy=removal,
            )
            for name in DOMAIN_LOGS
        }
        # One native CloudWatch Logs resource policy (of the ten an account may hold per region) instead of the
        # custom resource CDK would add; scoped to this domain's log groups and to this domain as the source.
        log_policy = logs.CfnResourcePolicy(
            self,
            "DomainLogsPolicy",
            policy_name=f"{config.resource_prefix}-opensearch-logs",
            policy_document=self.to_json_string(
                iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            principals=[iam.ServicePrincipal("es.amazonaws.com")],
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[group.log_group_arn for group in log_groups.values()],
                            conditions={
                                "StringEquals": {"aws:SourceAccount": self.account},
                                "ArnLike": {"aws:SourceArn": domain_arn},
                            },
                        )
                    ]
                ).to_json()
            ),
        )

        zone_awareness = settings.zone_awareness_azs > 1
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=self.domain_name,
            version=opensearch.EngineVersion.open_search(settings.engine_version_number),
            enable_version_upgrade=True,
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=settings.instance_type,
                data_nodes=settings.instance_count,
                master_node_instance_type=settings.dedicated_master_type,
                master_nodes=settings.dedicated_master_count or None,
                multi_az_with_standby_enabled=settings.multi_az_with_standby,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=zone_awareness,
                availability_zone_count=settings.zone_awareness_azs if zone_awareness else None,
            ),
            ebs=opensearch.EbsOptions(volume_size=settings.volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3),
            vpc=vpc,
            # One isolated subnet in each zone the domain spans.
            vpc_subnets=[
                ec2.SubnetSelection(
                    subnets=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnets[
                        : settings.zone_awareness_azs
                    ]
                )
            ],
            security_groups=[self.security_group],
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            # The pipeline role is the FGAC master: processing jobs are the only clients that can reach the domain
            # (isolated subnets), and they create versioned indices, aliases and search pipelines. The operator role
            # is admitted by the access policy; map it to a security role through the pipeline's access as needed.
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(master_user_arn=self.pipeline_role.role_arn),
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=log_groups["app"],
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["slow_search"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["slow_index"],
                # Publishing needs fine-grained access control (on above); the security plugin's own audit
                # configuration decides what is recorded (see docs/deploy.md).
                audit_log_enabled=True,
                audit_log_group=log_groups["audit"],
            ),
            suppress_logs_resource_policy=True,
            removal_policy=removal,
        )
        self.domain.node.add_dependency(log_policy)
        service_linked_role = ServiceLinkedRole(
            self,
            "OpenSearchServiceLinkedRole",
            service=OPENSEARCH_SERVICE,
            role_name=SERVICE_LINKED_ROLE,
            key=key,
            config=config,
        )
        self.domain.node.add_dependency(service_linked_role.resource)
        # Set on the resource itself: the Domain construct's `access_policies` would add a custom resource.
        self.domain.node.default_child.access_policies = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[
                        iam.ArnPrincipal(self.pipeline_role.role_arn),
                        iam.ArnPrincipal(self.operator_role.role_arn),
                    ],
                    actions=["es:ESHttp*"],
                    resources=[f"{domain_arn}/*"],
                )
            ]
        ).to_json()
        self._keep_what_the_domain_needs(removal, log_policy)
        if config.destroy_on_delete:
            # Deleted after the domain, before its group: OpenSearch removes the domain's interfaces afterwards.
            # A kept domain keeps its interfaces, its group and its subnets, so there is nothing to wait for.
            InterfaceDrain(
                self,
                "InterfaceDrain",
                security_group=self.security_group,
                owners=[self.domain],
                keep=[],
                key=key,
                config=config,
            )
        self._acknowledge(config)

    def _keep_what_the_domain_needs(self, removal: cdk.RemovalPolicy, log_policy: logs.CfnResourcePolicy) -> None:
        """A domain kept by a destroy keeps what it refers to: its security group (its subnets, in the network
        stack, likewise), its fine-grained-access master (the pipeline role) and the operator role its access
        policy names (both have names CloudFormation generates per stack, so no later deployment recreates those
        ARNs: deleted, they would leave the domain without an admin), and the log resource policy that lets it
        publish to its kept log groups."""
        self.security_group.apply_removal_policy(removal)
        for role in (self.pipeline_role, self.operator_role):
            keep_with_policies(role, removal)
        log_policy.apply_removal_policy(removal)

    @property
    def domain_arn(self) -> str:
        return self.domain.domain_arn

    @property
    def domain_endpoint(self) -> str:
        """Host name (no scheme) of the domain's HTTPS endpoint inside the VPC."""
        return self.domain.domain_endpoint

    def _acknowledge(self, config: EnvironmentConfig) -> None:
        settings = config.opensearch
        if not settings.dedicated_master_count:
            acknowledge(
                self.domain,
                "AwsSolutions-OS4",
                f"{config.name} runs {settings.instance_count} data node(s) without dedicated masters "
                "(opensearch.dedicated_master_count = 0) to keep a non-production index cheap",
            )
        if settings.zone_awareness_azs == 1:
            acknowledge(
                self.domain,
                "AwsSolutions-OS7",
                f"{config.name} keeps its domain in one zone (opensearch.zone_awareness_azs = 1): a development "
                "index that can be rebuilt from the data bucket",
            )
        acknowledge(
            self.domain,
            "AwsSolutions-OS3",
            "the domain has no public endpoint: it sits in isolated subnets behind a security group admitting only "
            "the processing jobs' group, and its access policy names two IAM roles, so an IP allowlist adds nothing",
        )
