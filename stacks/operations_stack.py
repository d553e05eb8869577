"""Operations: the promotion and clean-up hooks, what triggers them, their notifications and alarms."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from processing.pipelines.parameters import pipeline_names
from stacks.cleanup_permissions import grant_cleanup
from stacks.config import PROJECT, EnvironmentConfig
from stacks.hooks import RUNTIME, hook_code, hook_role, waiting_provider
from stacks.lifecycle import encrypted_log_group, removal_policy
from stacks.nag import acknowledge
from stacks.powertools_layer import powertools_layer_arn
from stacks.pricing import CUSTOM_METRICS

SSM_PREFIX = f"/{PROJECT}"
METRICS_NAMESPACE = "RagOps"  # the hooks' Powertools metrics
# The custom metrics every clean-up pass writes (lambda/cleanup/handler.py ACTION_METRICS, zeros included), each
# with the dimensions service and environment: one CloudWatch custom metric each per environment.
CLEANUP_METRICS = ("CleanupDeleted", "CleanupStopped", "CleanupFailed")
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
# The stack delete waits for the clean-up: endpoints take minutes to delete, and a stopping execution first
# finishes its running step (a processing job stops within minutes; a Lambda step runs to its timeout).
# After 40 minutes the hook fails, naming what still bills, and the stack stays until it is deleted again.
DELETE_WAIT = cdk.Duration.minutes(40)
DELETE_POLL = cdk.Duration.seconds(30)
# How soon an unfinished promotion decision is completed (its lease lasts two minutes, the function one).
RECONCILE_EVERY = cdk.Duration.minutes(15)  # endpoint and execution states change over minutes, not seconds


def hook_function_name(config: EnvironmentConfig, hook: str) -> str:
    """Fixed names: the pipeline stack calls the promotion hook by ARN without depending on this stack, so this
    stack (and its on-delete clean-up) is deleted before the pipelines whose executions it stops."""
    return f"{config.resource_prefix}-{hook}"


class OperationsStack(cdk.Stack):
    """Promotion on measured metrics, clean-up on a schedule and on stack delete, both observable."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        data_bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self._key = key
        self._removal = removal_policy(config)
        self._layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", powertools_layer_arn(config.region)
        )
        self._allow_services_to_use_key(key)

        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"RagOps {config.name} promotion and clean-up",
            master_key=key,
            enforce_ssl=True,
        )
        for address in config.notifications.email_addresses:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        self.promotion_function: lambda_.IFunction = self._promotion(data_bucket)
        self.cleanup_function: lambda_.IFunction = self._cleanup()

    # -- functions ---------------------------------------------------------------------------------------

    def _function(
        self, name: str, *, environment: dict[str, str], timeout_minutes: int
    ) -> tuple[lambda_.Function, sqs.Queue]:
        """One hook: asset code, managed Powertools layer, own role, log group, DLQ and alarms."""
        prefix = self._config.resource_prefix
        log_group = encrypted_log_group(self, f"{name.title()}Logs", self._key, self._config)
        dead_letters = self._queue(f"{name.title()}DeadLetters")
        role = hook_role(
            self,
            f"{name.title()}Role",
            log_group=log_group,
            role_name=f"{prefix}-{name}",
            description=f"{prefix} {name} hook",
        )
        function = lambda_.Function(
            self,
            f"{name.title()}Function",
            function_name=hook_function_name(self._config, name),
            description=f"{prefix} {name} hook",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.lambda_handler",
            code=hook_code(self, name),
            layers=[self._layer],
            role=role,
            memory_size=256,
            timeout=cdk.Duration.minutes(timeout_minutes),
            reserved_concurrent_executions=self._config.hooks.reserved_concurrency,
            dead_letter_queue=dead_letters,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={"POWERTOOLS_SERVICE_NAME": f"{PROJECT}-{name}", **environment},
        )
        # X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray trace upload and the listed read-only APIs accept only '*'; every write is scoped",
        )
        self._alarm(f"{name.title()}Errors", function.metric_errors(period=cdk.Duration.minutes(5)), "errors")
        self._alarm(
            f"{name.title()}DeadLetterDepth",
            dead_letters.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
            "events that failed every retry and wait in the dead-letter queue",
        )
        self.topic.grant_publish(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "publishing to the encrypted topic needs data keys, from the project key only",
        )
        return function, dead_letters

    def _promotion(self, data_bucket: s3.IBucket) -> lambda_.Function:
        config = self._config
        target = config.promotion.next_environment
        function, _ = self._function(
            "promotion",
            environment={
                "RAGOPS_ENVIRONMENT": config.name,
                "RAGOPS_NEXT_ENVIRONMENT": target or "",
                "RAGOPS_THRESHOLDS": json.dumps(config.promotion.thresholds, sort_keys=True),
                "RAGOPS_DATA_BUCKET": data_bucket.bucket_name,
                "RAGOPS_SSM_PREFIX": SSM_PREFIX,
                "RAGOPS_TOPIC_ARN": self.topic.topic_arn,
                "RAGOPS_EVENT_BUS": "default",
                "RAGOPS_PIPELINES": ",".join(pipeline_names(config.name)),
            },
            timeout_minutes=1,
        )
        role = function.role
        assert role is not None
        # The data bucket's policy grants S3 access to this role by ARN: the bucket owns who may read evaluation
        # reports and write decision records, and no cross-stack token enters the role's policy. A condition,
        # not a principal, names the role because the storage stack deploys before the role exists.
        # `promotions/<env>/` holds this environment's decision records, their progress objects and the ordered
        # pointers (lambda/promotion): all written only with If-None-Match or If-Match.
        records = data_bucket.arn_for_objects(f"promotions/{config.name}/*")
        role_arn = f"arn:{self.partition}:iam::{self.account}:role/{config.resource_prefix}-promotion"
        # s3:ListBucket lets S3 answer NoSuchKey for a missing report instead of AccessDenied (S3 hides whether a
        # key exists from principals that may not list the bucket); GetObject has no s3:prefix key to narrow it.
        for actions, resources in (
            (["s3:GetObject"], [data_bucket.arn_for_objects("runs/*"), records]),
            (["s3:PutObject"], [records]),
            (["s3:ListBucket"], [data_bucket.bucket_arn]),
        ):
            data_bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.AnyPrincipal()],
                    actions=actions,
                    resources=resources,
                    conditions={"ArnEquals": {"aws:PrincipalArn": role_arn}},
                )
            )
        self._key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        decisions = f"{SSM_PREFIX}/{config.name}/last-promotion-decision"
        handed_on = f"{SSM_PREFIX}/{config.name}/{'promoted-config' if target else 'production-release'}"
        for actions, name in (
            (["ssm:PutParameter", "ssm:GetParameterHistory"], decisions),  # appended once per decision
            (["ssm:PutParameter", "ssm:GetParameter"], handed_on),  # the projection of the ordered pointer
        ):
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=actions,
                    resources=[self.format_arn(service="ssm", resource="parameter", resource_name=name[1:])],
                )
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[self.format_arn(service="events", resource="event-bus", resource_name="default")],
                conditions={"StringEquals": {"events:source": "ragops.promotion"}},
            )
        )
        # The execution's parameters (EventBridge path) and its start time, which orders promotions.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListPipelineParametersForExecution", "sagemaker:DescribePipelineExecution"],
                resources=self._pipeline_arns("/execution/*"),
            )
        )
        for executions in self._pipeline_arns("/execution/*"):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{executions}]",
                "executions are created at run time, each under one of this environment's pipelines, named exactly",
            )

        pipeline_succeeded = events.Rule(
            self,
            "PipelineSucceeded",
            description=f"{config.resource_prefix}: a pipeline execution of this environment succeeded",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_CHANGE],
                detail={
                    "currentPipelineExecutionStatus": ["Succeeded"],
                    "pipelineArn": self._pipeline_arns(""),
                },
            ),
        )
        pipeline_succeeded.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=self._rule_dead_letters("PromotionRuleDeadLetters"),
                retry_attempts=4,
                max_event_age=cdk.Duration.hours(6),
            )
        )
        # SageMaker Lambda steps take no retry policy and the rule above fires only on Succeeded: a delivery that
        # failed partway is never repeated, so a schedule completes what it left (lambda/promotion/reconcile.py).
        reconciliation = events.Rule(
            self,
            "PromotionReconciliation",
            description=f"{config.resource_prefix}: complete promotion decisions a failed delivery left unfinished",
            schedule=events.Schedule.rate(RECONCILE_EVERY),
        )
        reconciliation.add_target(
            targets.LambdaFunction(
                function,
                event=events.RuleTargetInput.from_object({"mode": "reconcile"}),
                dead_letter_queue=self._rule_dead_letters("ReconciliationDeadLetters"),
                retry_attempts=2,
            )
        )
        return function

    def _cleanup(self) -> lambda_.Function:
        config = self._config
        function, _ = self._function(
            "cleanup",
            environment={
                "RAGOPS_ENVIRONMENT": config.name,
                "RAGOPS_ENDPOINT_IDLE_TTL_HOURS": str(config.cleanup.endpoint_idle_ttl_hours),
                "RAGOPS_PIPELINE_EXECUTION_TTL_HOURS": str(config.cleanup.pipeline_execution_ttl_hours),
                "RAGOPS_DRY_RUN": str(config.cleanup.dry_run).lower(),
                "RAGOPS_TOPIC_ARN": self.topic.topic_arn,
                "RAGOPS_DELETE_WAIT_MINUTES": str(int(DELETE_WAIT.to_minutes())),
            },
            timeout_minutes=10,
        )
        role = function.role
        assert role is not None
        grant_cleanup(role, self._sagemaker_arn("").rstrip(":"), self._pipeline_arns, config.name)
        # What every scheduled pass writes to CloudWatch, declared on the function's template resource: the
        # idle-cost estimate (stacks/pricing.py) prices it from there.
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, cdk.CfnResource)
        cfn_function.add_metadata(
            CUSTOM_METRICS,
            {
                "Namespace": METRICS_NAMESPACE,
                "MetricNames": list(CLEANUP_METRICS),
                "EveryHours": config.cleanup.schedule_rate_hours,
            },
        )

        schedule = events.Rule(
            self,
            "CleanupSchedule",
            description=f"{config.resource_prefix}: scheduled clean-up of idle and stale resources",
            schedule=events.Schedule.rate(cdk.Duration.hours(config.cleanup.schedule_rate_hours)),
        )
        schedule.add_target(
            targets.LambdaFunction(
                function,
                event=events.RuleTargetInput.from_object({"mode": "scheduled"}),
                dead_letter_queue=self._rule_dead_letters("CleanupScheduleDeadLetters"),
                retry_attempts=2,
            )
        )

        self._alarm(
            "CleanupFailedActions",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=CLEANUP_METRICS[2],
                dimensions_map={"service": f"{PROJECT}-cleanup", "environment": config.name},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            "clean-up reads or deletes that failed (the pass goes on, so the function reports no error)",
        )

        # The delete completes only when the hook finds nothing of this environment executing, stopping or
        # serving: the pipeline stack (deleted next) cannot delete a pipeline with a running execution.
        provider = waiting_provider(
            self,
            "CleanupOnDeleteProvider",
            handler=function,
            wait=DELETE_WAIT,
            poll=DELETE_POLL,
            log_group=encrypted_log_group(self, "CleanupOnDeleteProviderLogs", self._key, config),
        )
        on_delete = cdk.CustomResource(
            self, "CleanupOnDelete", service_token=provider.service_token, resource_type="Custom::RagOpsCleanup"
        )
        on_delete.node.add_dependency(function)
        return function

    # -- shared pieces -----------------------------------------------------------------------------------

    def _rule_dead_letters(self, construct_id: str) -> sqs.Queue:
        """An EventBridge target's DLQ: events not delivered after every retry; alarmed like the others."""
        queue = self._queue(construct_id)
        self._alarm(
            f"{construct_id}Depth",
            queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
            "events EventBridge could not deliver to the hook; they wait in the rule's dead-letter queue",
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "this queue is itself the dead-letter queue of an EventBridge rule target",
        )
        return queue

    def _queue(self, construct_id: str) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=self._removal,
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, what: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"{self._config.resource_prefix}: {what}",
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

    def _allow_services_to_use_key(self, key: kms.IKey) -> None:
        """EventBridge (rule DLQs) and CloudWatch (alarm notifications) encrypt with the project key."""
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

    def _sagemaker_arn(self, resource: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{resource}"

    def _pipeline_arns(self, suffix: str) -> list[str]:
        """The ARNs of this environment's pipelines (the pipeline stack owns them), each followed by `suffix`."""
        return [self._sagemaker_arn(f"pipeline/{name}{suffix}") for name in pipeline_names(self._config.name)]
