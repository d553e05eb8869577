"""The role a SageMaker pipeline itself runs as, apart from the role its processing jobs run as.

The pipeline starts, watches and stops its processing jobs (passing them the job role), reads the evaluation
report for its condition steps, and invokes the promotion hook. The jobs run the pipeline's code on the data,
the endpoints and the domain; they get none of this, so nothing a stage runs can invoke the promotion hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge_wildcard_resource


@dataclass(frozen=True)
class Orchestration:
    """What the pipeline role acts on."""

    job_role: iam.IRole
    processing_jobs_arn: str  # processing-job/pipelines-* of this account and region
    reports_arn: str  # runs/* in the data bucket, where each execution's report lands
    key_arn: str
    promotion_function_arn: str | None


def pipeline_role(scope: Construct, construct_id: str, spec: Orchestration, description: str) -> iam.Role:
    role = iam.Role(
        scope, construct_id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"), description=description
    )
    statements = [
        iam.PolicyStatement(
            actions=[
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:AddTags",
            ],
            resources=[spec.processing_jobs_arn],
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[spec.job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # Condition steps read the report's property file themselves (Std:JsonGet).
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[spec.reports_arn]),
        iam.PolicyStatement(actions=["kms:Decrypt"], resources=[spec.key_arn]),
    ]
    if spec.promotion_function_arn:
        statements.append(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[spec.promotion_function_arn])
        )
    for statement in statements:
        role.add_to_policy(statement)
    acknowledge_wildcard_resource(
        role,
        spec.processing_jobs_arn,
        "SageMaker pipelines name their processing jobs pipelines-<execution>-<step>-<suffix> at run time",
    )
    acknowledge_wildcard_resource(
        role, spec.reports_arn, "each execution writes its report under runs/<execution id>/, known only at run time"
    )
    return role
