"""GitHub Actions OIDC trust for one AWS account: the provider, one deploy role per environment, a PR role.

IAM is global to an account, so the provider and roles exist once per account that hosts environments,
in a stage of their own (`cdk deploy "cicd-<account>/*"`), outside every environment's stage: deploying
or destroying an environment never touches the trust its own deployments run on.

The deploy roles hold no deployment rights themselves. They may only assume the CDK bootstrap roles of their
environment's account and region (which carry CloudFormation, asset publishing and lookups), run and
watch the environment's SageMaker pipelines, and read its promotion decisions.

Pull requests run their own code with whatever their role reaches (a pull request may change the workflow
too), so their role reaches little: it exists only in the accounts of `cicd.pull_request_environments` and may
only read those environments' deployed templates, which is all `cdk diff --method template` needs once the
CDK lookup role (ReadOnlyAccess) is out of reach; the CLI then falls back to the role's own credentials.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from processing.pipelines.parameters import VARIANTS, pipeline_name
from stacks.config import PROJECT, CiCdConfig, EnvironmentConfig
from stacks.nag import acknowledge
from stacks.storage_stack import data_bucket_name
from stacks.tagging import tag_project_only

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")
MAX_SESSION = cdk.Duration.hours(1)
STAGE_PREFIX = "cicd-"


def stage_id(account: str) -> str:
    """`cicd-<account>`: the stage to deploy once per account."""
    return f"{STAGE_PREFIX}{account}"


def deploy_role_name(env: EnvironmentConfig) -> str:
    return f"{env.resource_prefix}-github-deploy"


PULL_REQUEST_ROLE_NAME = f"{PROJECT}-github-pull-request"
DECISION_LOG = "last-promotion-decision"  # the promotion hook's parameter name


class CiCdStage(cdk.Stage):
    """The CI/CD stack of one account, deployed in the region of the account's first environment."""

    def __init__(self, scope: Construct, cicd: CiCdConfig, environments: list[EnvironmentConfig]) -> None:
        account, region = environments[0].account, environments[0].region
        super().__init__(scope, stage_id(account), env=cdk.Environment(account=account, region=region))
        self.cicd = CiCdStack(
            self,
            "CiCd",
            cicd=cicd,
            environments=environments,
            description=f"RagOps CI/CD: GitHub OIDC roles for {', '.join(e.name for e in environments)}",
        )
        tag_project_only(self)


class CiCdStack(cdk.Stack):
    """OIDC provider for GitHub Actions and the roles its workflows assume, scoped to repository and environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cicd: CiCdConfig,
        environments: list[EnvironmentConfig],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._cicd = cicd
        self.provider = self._provider(environments[0].account)
        self.deploy_roles = {env.name: self._deploy_role(env) for env in environments}
        diffed = [env for env in environments if env.name in cicd.pull_request_environments]
        self.pull_request_role = self._pull_request_role(diffed) if diffed else None

    def _provider(self, account: str) -> iam.IOidcProvider:
        """GitHub's OIDC provider: imported where the account already has it, else created (and owned) here."""
        if account in self._cicd.existing_oidc_provider_accounts:
            arn = f"arn:{self.partition}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"
            return iam.OidcProviderNative.from_oidc_provider_arn(self, "GitHubOidc", arn)
        # No thumbprints: IAM verifies GitHub's certificate through its own trusted root CAs.
        return iam.OidcProviderNative(self, "GitHubOidc", url=f"https://{GITHUB_OIDC_HOST}", client_ids=[AUDIENCE])

    def _principal(self, subject: str) -> iam.WebIdentityPrincipal:
        """Tokens for this repository and exactly this subject; StringEquals, never a wildcard match."""
        return iam.WebIdentityPrincipal(
            self.provider.oidc_provider_arn,
            conditions={
                "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": AUDIENCE, f"{GITHUB_OIDC_HOST}:sub": subject},
            },
        )

    def _bootstrap_role_arn(self, env: EnvironmentConfig, kind: str) -> str:
        name = f"cdk-{self._cicd.bootstrap_qualifier}-{kind}-role-{env.account}-{env.region}"
        return f"arn:{self.partition}:iam::{env.account}:role/{name}"

    def _nag_name(self, arn: str) -> str:
        """cdk-nag names a resource by its template form, where an unresolved partition reads `<AWS::Partition>`."""
        return arn.replace(self.partition, "<AWS::Partition>") if cdk.Token.is_unresolved(self.partition) else arn

    def _deploy_role(self, env: EnvironmentConfig) -> iam.Role:
        pipelines = [
            f"arn:{self.partition}:sagemaker:{env.region}:{env.account}:pipeline/{pipeline_name(env.name, variant)}"
            for variant in VARIANTS
        ]
        # `pipeline start` pins the deployed image by digest: it reads the tag's digest from the assets repository.
        assets = (
            f"arn:{self.partition}:ecr:{env.region}:{env.account}:repository/"
            f"cdk-{self._cicd.bootstrap_qualifier}-container-assets-{env.account}-{env.region}"
        )
        executions = [f"{pipeline}/execution/*" for pipeline in pipelines]
        # The promotion hook logs every decision there; the gate reads its own execution's from the history.
        decisions = f"arn:{self.partition}:ssm:{env.region}:{env.account}:parameter/{PROJECT}/{env.name}/{DECISION_LOG}"
        bucket = f"arn:{self.partition}:s3:::{data_bucket_name(env)}"
        records = f"{bucket}/promotions/{env.name}/decisions/*"
        keys = f"arn:{self.partition}:kms:{env.region}:{env.account}:key/*"
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="UseCdkBootstrapRoles",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=[self._bootstrap_role_arn(env, kind) for kind in BOOTSTRAP_ROLE_KINDS],
                ),
                iam.PolicyStatement(
                    sid="RunPipelines",
                    actions=[
                        "sagemaker:DescribePipeline",
                        "sagemaker:StartPipelineExecution",
                        "sagemaker:DescribePipelineExecution",
                    ],
                    resources=[*pipelines, *executions],
                ),
                iam.PolicyStatement(sid="PinProcessingImage", actions=["ecr:DescribeImages"], resources=[assets]),
                iam.PolicyStatement(
                    sid="ReadPromotionDecisions",
                    actions=["ssm:GetParameter", "ssm:GetParameterHistory"],
                    resources=[decisions],
                ),
                # The decision names its record by version: the gate reads the run config there, not in the
                # parameter (GetObject with a VersionId needs s3:GetObjectVersion).
                iam.PolicyStatement(
                    sid="ReadPromotionRecords",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[records],
                ),
                # The data bucket is encrypted with the environment's key, created by its storage stack: its ARN
                # is not known here. Any key of the account, but only for S3, only for this bucket (with S3
                # Bucket Keys the encryption context is the bucket's ARN), and only to decrypt.
                iam.PolicyStatement(
                    sid="DecryptPromotionRecords",
                    actions=["kms:Decrypt"],
                    resources=[keys],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"s3.{env.region}.amazonaws.com",
                            "kms:EncryptionContext:aws:s3:arn": bucket,
                        }
                    },
                ),
            ]
        )
        role = iam.Role(
            self,
            f"Deploy-{env.name}",
            role_name=deploy_role_name(env),
            description=f"GitHub Actions deployments of {env.name} ({self._cicd.subject}, environment {env.name})",
            assumed_by=self._principal(f"{self._cicd.subject}:environment:{env.name}"),
            max_session_duration=MAX_SESSION,
            inline_policies={"Deploy": policy},
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{self._nag_name(records)}]",
            "decision records are named by execution id at run time; the wildcard covers this environment's only",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{self._nag_name(keys)}]",
            "the data key's ARN is made by the storage stack; kms:ViaService and the bucket's encryption context "
            "confine Decrypt to S3 reads of this environment's data bucket",
        )
        for execution in executions:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{self._nag_name(execution)}]",
                "SageMaker generates execution ids at start; the wildcard covers only this pipeline's executions",
            )
        cdk.CfnOutput(self, f"DeployRoleArn-{env.name}", value=role.role_arn, description=f"AWS_ROLE_ARN of {env.name}")
        return role

    def _pull_request_role(self, environments: list[EnvironmentConfig]) -> iam.Role:
        """Reads the deployed templates of `environments` (all in this account) and nothing else."""
        stacks = [
            f"arn:{self.partition}:cloudformation:{env.region}:{env.account}:stack/{env.name}-*/*"
            for env in environments
        ]
        # `cdk diff` reads the bootstrap version before it reads templates.
        versions = sorted(
            {
                f"arn:{self.partition}:ssm:{env.region}:{env.account}:parameter/cdk-bootstrap/"
                f"{self._cicd.bootstrap_qualifier}/version"
                for env in environments
            }
        )
        role = iam.Role(
            self,
            "PullRequest",
            role_name=PULL_REQUEST_ROLE_NAME,
            description=(
                f"GitHub Actions pull-request checks of {self._cicd.subject}: template diffs of "
                f"{', '.join(env.name for env in environments)} only"
            ),
            assumed_by=self._principal(f"{self._cicd.subject}:pull_request"),
            max_session_duration=MAX_SESSION,
            inline_policies={
                "Diff": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadDeployedTemplates",
                            actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
                            resources=stacks,
                        ),
                        iam.PolicyStatement(
                            sid="ReadBootstrapVersion", actions=["ssm:GetParameter"], resources=versions
                        ),
                    ]
                )
            },
        )
        for stack in stacks:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{self._nag_name(stack)}]",
                "CloudFormation appends a generated id to every stack ARN; the name prefix is this environment's stage",
            )
        cdk.CfnOutput(self, "PullRequestRoleArn", value=role.role_arn, description="CDK_DIFF_ROLE_ARN_<ENV>")
        return role
