"""Operations stack: hook functions, their triggers, dead-letter queues, alarms, topic and least privilege."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from stacks.app_builder import build_app
from stacks.config import load_app_config
from stacks.powertools_layer import LAYER_NAME, powertools_layer_arn
from tests.stacks.conftest import ENVIRONMENTS, ROOT, cdk_context, synth_environment, waiter_retry

CONFIG = load_app_config(cdk_context())
PIPELINE = "AWS::SageMaker::Pipeline"


def template(templates, env: str) -> Template:
    return templates[f"{env}/Operations"]


def functions(t: Template) -> dict[str, dict]:
    """The two hooks by name (the provider framework's function is CDK's own)."""
    found = t.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}})
    return {r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: r for r in found.values()}


def logical_id(t: Template, kind: str, service: str) -> str:
    for lid, resource in t.find_resources(kind).items():
        if resource["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == service:
            return lid
    raise AssertionError(f"no {kind} for {service}")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_hooks_run_python_314_on_arm64_with_the_managed_powertools_layer(templates, env):
    hooks = functions(template(templates, env))
    assert set(hooks) == {"ragops-promotion", "ragops-cleanup"}
    for hook in hooks.values():
        props = hook["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["Layers"] == [powertools_layer_arn(CONFIG.environments[env].region)]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "ReservedConcurrentExecutions" not in props  # off by default: new accounts' quota allows none
        assert "TargetArn" in props["DeadLetterConfig"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_reserved_concurrency_and_email_subscriptions_are_config_values(tmp_path):
    addresses = ["ops@example.org", "ml-team@example.org"]
    changed = synth_environment(
        tmp_path, "dev", {"hooks": {"reserved_concurrency": 2}, "notifications": {"email_addresses": addresses}}
    )["Operations"]
    hooks = functions(changed)
    assert [h["Properties"]["ReservedConcurrentExecutions"] for h in hooks.values()] == [2, 2]
    subscriptions = changed.find_resources("AWS::SNS::Subscription").values()
    (topic,) = changed.find_resources("AWS::SNS::Topic")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(addresses)
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions)
    assert all(s["Properties"]["TopicArn"] == {"Ref": topic} for s in subscriptions)


def test_unknown_region_for_the_layer_is_refused():
    with pytest.raises(ValueError, match=f"region 'xx-nowhere-1': the Powertools layer {LAYER_NAME}"):
        powertools_layer_arn("xx-nowhere-1")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_promotion_gets_this_environments_thresholds_and_target(templates, env):
    config = CONFIG.environments[env]
    variables = functions(template(templates, env))["ragops-promotion"]["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["RAGOPS_THRESHOLDS"]) == config.promotion.thresholds
    assert variables["RAGOPS_ENVIRONMENT"] == env
    assert variables["RAGOPS_NEXT_ENVIRONMENT"] == (config.promotion.next_environment or "")
    assert variables["RAGOPS_SSM_PREFIX"] == "/ragops"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cleanup_schedule_follows_the_environments_rate(templates, env):
    config = CONFIG.environments[env]
    t = template(templates, env)
    hours = config.cleanup.schedule_rate_hours
    amount, unit = (hours // 24, "day") if hours % 24 == 0 else (hours, "hour")  # CDK writes the largest unit
    expected = f"rate({amount} {unit}{'s' if amount > 1 else ''})"
    rule = t.find_resources("AWS::Events::Rule", {"Properties": {"ScheduleExpression": expected}})
    assert len(rule) == 1
    (target,) = next(iter(rule.values()))["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {"mode": "scheduled"}
    assert target["Arn"] == {"Fn::GetAtt": [logical_id(t, "AWS::Lambda::Function", "ragops-cleanup"), "Arn"]}
    assert "Arn" in target["DeadLetterConfig"]
    variables = functions(t)["ragops-cleanup"]["Properties"]["Environment"]["Variables"]
    assert variables["RAGOPS_ENDPOINT_IDLE_TTL_HOURS"] == str(config.cleanup.endpoint_idle_ttl_hours)
    assert variables["RAGOPS_PIPELINE_EXECUTION_TTL_HOURS"] == str(config.cleanup.pipeline_execution_ttl_hours)
    assert variables["RAGOPS_DRY_RUN"] == str(config.cleanup.dry_run).lower()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rule_matches_successful_executions_of_this_environments_pipelines_only(templates, env):
    t = template(templates, env)
    rules = t.find_resources("AWS::Events::Rule", {"Properties": {"EventPattern": Match.any_value()}})
    (rule,) = rules.values()
    account, region = CONFIG.environments[env].account, CONFIG.environments[env].region
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {
            "currentPipelineExecutionStatus": ["Succeeded"],
            "pipelineArn": [
                f"arn:aws:sagemaker:{region}:{account}:pipeline/ragops-{env}-{variant}"
                for variant in ("single", "multi")
            ],
        },
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical_id(t, "AWS::Lambda::Function", "ragops-promotion"), "Arn"]}
    assert "Arn" in target["DeadLetterConfig"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dead_letter_queues_are_kms_encrypted_and_refuse_plain_http(templates, env):
    t = template(templates, env)
    queues = t.find_resources("AWS::SQS::Queue")
    assert len(queues) == 5  # two function DLQs, three rule-target DLQs (success, reconciliation, clean-up)
    for queue in queues.values():
        assert "KmsMasterKeyId" in queue["Properties"]
    policies = t.find_resources("AWS::SQS::QueuePolicy")
    denied = [
        lid
        for lid, p in policies.items()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denied) == 5


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_errors_and_dead_letters_raise_alarms_on_the_topic(templates, env):
    t = template(templates, env)
    (topic_id,) = t.find_resources("AWS::SNS::Topic", {"Properties": {"KmsMasterKeyId": Match.any_value()}})
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    # every dead-letter queue (two functions', three rule targets'), both functions' errors, failed clean-up actions
    assert metrics == ["ApproximateNumberOfMessagesVisible"] * 5 + ["CleanupFailed"] + ["Errors"] * 2
    queues = {lid for lid in t.find_resources("AWS::SQS::Queue")}
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        for d in a["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert watched == queues
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    topic_policy = next(iter(t.find_resources("AWS::SNS::TopicPolicy").values()))
    statements = topic_policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_log_groups_are_encrypted_with_retention(templates, env):
    groups = template(templates, env).find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 3  # two hooks, the provider framework
    for group in groups.values():
        assert "KmsKeyId" in group["Properties"]
        assert group["Properties"]["RetentionInDays"] == CONFIG.environments[env].log_retention_days


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_delete_runs_the_cleanup_through_a_custom_resource(templates, env):
    t = template(templates, env)
    (resource,) = t.find_resources("Custom::RagOpsCleanup").values()
    assert "ServiceToken" in resource["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_delete_polls_the_cleanup_and_it_gives_up_first_within_cloudformations_hour(templates, env):
    t = template(templates, env)
    cleanup_arn = {"Fn::GetAtt": [logical_id(t, "AWS::Lambda::Function", "ragops-cleanup"), "Arn"]}
    (is_complete,) = t.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "framework.isComplete"}}
    ).values()
    assert is_complete["Properties"]["Environment"]["Variables"]["USER_IS_COMPLETE_FUNCTION_ARN"] == cleanup_arn
    retry = waiter_retry(t)
    assert retry["IntervalSeconds"] == 30
    framework_minutes = retry["IntervalSeconds"] * retry["MaxAttempts"] / 60
    variables = functions(t)["ragops-cleanup"]["Properties"]["Environment"]["Variables"]
    # The hook fails naming what still bills before the framework's bare timeout, and both before CloudFormation's
    # one-hour limit for a custom resource (its ServiceTimeout is left at that maximum).
    assert int(variables["RAGOPS_DELETE_WAIT_MINUTES"]) == 40 < framework_minutes == 45 < 60
    (resource,) = t.find_resources("Custom::RagOpsCleanup").values()
    assert "ServiceTimeout" not in resource["Properties"]


def statements(t: Template) -> list[dict]:
    return [
        s for p in t.find_resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_policy_allows_every_action(templates, env):
    for statement in statements(template(templates, env)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a != "*" and not a.endswith(":*") for a in actions), statement


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sagemaker_deletes_are_conditioned_on_this_environments_tags_and_a_run_time_creator(templates, env):
    deletes = [s for s in statements(template(templates, env)) if "sagemaker:DeleteEndpoint" in s["Action"]]
    assert len(deletes) == 1
    assert deletes[0]["Action"] == "sagemaker:DeleteEndpoint"  # run-time code creates no config or model
    assert deletes[0]["Condition"] == {  # positive marks only: no condition on a tag's absence
        "StringEquals": {
            "aws:ResourceTag/ragops:project": "ragops",
            "aws:ResourceTag/ragops:environment": env,
            "aws:ResourceTag/ragops:created-by": ["processing.backends.on_demand"],
        },
    }
    stops = [s for s in statements(template(templates, env)) if s["Action"] == "sagemaker:StopPipelineExecution"]
    assert [sorted(s["Resource"]) for s in stops] == [
        sorted(
            f"arn:aws:sagemaker:us-east-1:{CONFIG.environments[env].account}:pipeline/ragops-{env}-{v}/execution/*"
            for v in ("single", "multi")
        )
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cleanup_reads_the_status_of_its_own_stack_only(templates, env):
    (statement,) = [s for s in statements(template(templates, env)) if "cloudformation:DescribeStacks" in s["Action"]]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    assert statement["Resource"] == {"Ref": "AWS::StackId"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_unscopable_reads_use_a_wildcard_resource(templates, env):
    wildcard = {
        a
        for s in statements(template(templates, env))
        if s["Resource"] == "*"
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert wildcard == {
        "tag:GetResources",
        "cloudwatch:GetMetricStatistics",
        "sagemaker:ListEndpoints",
        "sagemaker:ListPipelines",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_promotion_writes_only_its_own_parameters_and_records(templates, env):
    config = CONFIG.environments[env]
    target = f"{env}/promoted-config" if config.promotion.next_environment else f"{env}/production-release"
    ssm = {
        (r if isinstance(r, str) else json.dumps(r)).split(":parameter/")[1]: sorted(s["Action"])
        for s in statements(template(templates, env))
        if "ssm:PutParameter" in s["Action"]
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    assert ssm == {
        f"ragops/{env}/last-promotion-decision": ["ssm:GetParameterHistory", "ssm:PutParameter"],
        f"ragops/{target}": ["ssm:GetParameter", "ssm:PutParameter"],  # the projection, re-synced every delivery
    }
    bucket_policy = next(iter(templates[f"{env}/Storage"].find_resources("AWS::S3::BucketPolicy").values()))
    grants = [
        s
        for p in templates[f"{env}/Storage"].find_resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "aws:PrincipalArn" in json.dumps(s.get("Condition", {}))
    ]
    assert bucket_policy
    # ListBucket: a missing report is NoSuchKey, not AccessDenied
    assert {json.dumps(s["Action"]) for s in grants} == {'"s3:GetObject"', '"s3:PutObject"', '"s3:ListBucket"'}
    for grant in grants:
        assert grant["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{config.account}:role/ragops-{env}-promotion"}
        }
    (put,) = [g for g in grants if g["Action"] == "s3:PutObject"]
    # records, progress objects and ordered pointers of this environment only
    assert json.dumps(put["Resource"]).endswith(f'"/promotions/{env}/*"]]}}')


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_promotion_is_reconciled_on_a_schedule_with_its_own_dead_letters(templates, env):
    t = template(templates, env)
    promotion = logical_id(t, "AWS::Lambda::Function", "ragops-promotion")
    (rule,) = [
        r
        for r in t.find_resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [promotion, "Arn"]}
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    (target,) = rule["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {"mode": "reconcile"}
    assert "Arn" in target["DeadLetterConfig"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_failed_cleanup_actions_alarm_on_the_hooks_own_metric(templates, env):
    t = template(templates, env)
    (alarm,) = [
        a
        for a in t.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "CleanupFailed"
    ]
    props = alarm["Properties"]
    assert props["Namespace"] == "RagOps"
    assert props["Statistic"] == "Sum"
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Powertools adds the service dimension; the hook adds the environment.
    assert sorted((d["Name"], d["Value"]) for d in props["Dimensions"]) == [
        ("environment", env),
        ("service", "ragops-cleanup"),
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_promotion_reads_the_executions_start_time(templates, env):
    (statement,) = [
        s for s in statements(template(templates, env)) if "sagemaker:ListPipelineParametersForExecution" in s["Action"]
    ]
    assert sorted(statement["Action"]) == [
        "sagemaker:DescribePipelineExecution",
        "sagemaker:ListPipelineParametersForExecution",
    ]


def test_the_hooks_reach_this_environments_pipelines_by_exact_name_not_a_neighbours(tmp_path):
    """`dev` and `dev-eu` in one account and region: nothing of dev's operations stack (event rule, IAM, the
    promotion hook's own check) matches a dev-eu pipeline or execution, while each of dev's own is matched."""
    context = cdk_context()
    environments = context["ragops"]["environments"]
    environments["dev-eu"] = {
        **environments["dev"],
        "network": {**environments["dev"]["network"], "cidr": "10.50.0.0/16"},
    }
    app = build_app(cdk.App(context={**context, "environments": "dev,dev-eu"}, outdir=str(tmp_path)), with_checks=False)
    dev = Template.from_stack(app.node.find_child("dev").node.find_child("Operations")).to_json()

    def pipeline_arns(env: str) -> list[str]:
        stack = app.node.find_child(env).node.find_child("Pipeline")
        names = [r["Properties"]["PipelineName"] for r in Template.from_stack(stack).find_resources(PIPELINE).values()]
        return [f"arn:aws:sagemaker:us-east-1:111111111111:pipeline/{name}" for name in names]

    own, neighbours = pipeline_arns("dev"), pipeline_arns("dev-eu")
    assert len(own) == len(neighbours) == 2

    (rule,) = (r for r in dev["Resources"].values() if "EventPattern" in r.get("Properties", {}))
    matchers = rule["Properties"]["EventPattern"]["detail"]["pipelineArn"]

    def rule_matches(arn: str) -> bool:
        return any(m == arn if isinstance(m, str) else arn.startswith(m["prefix"]) for m in matchers)

    pipeline_resources = [
        resource
        for statement in statements(Template.from_json(dev))
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
        if isinstance(resource, str) and ":pipeline/" in resource
    ]

    def granted(arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in pipeline_resources)

    (promotion,) = (f for f in functions(Template.from_json(dev)).values() if "RAGOPS_PIPELINES" in str(f))
    checked = promotion["Properties"]["Environment"]["Variables"]["RAGOPS_PIPELINES"].split(",")
    for arn in own:
        assert rule_matches(arn)
        assert granted(arn)
        assert granted(f"{arn}/execution/abc123")
        assert arn.rsplit("/", 1)[1] in checked
    for arn in neighbours:
        assert not rule_matches(arn)
        assert not granted(arn)
        assert not granted(f"{arn}/execution/abc123")
        assert arn.rsplit("/", 1)[1] not in checked


def test_every_hook_asset_carries_the_shared_module_beside_its_handler(app, templates):
    """lambda/shared/ is copied into each function's code at synth (stacks/hooks.py): the handlers import it."""
    outdir = Path(app.outdir)
    found = set()
    for t in templates.values():
        hooks = t.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handler.lambda_handler"}})
        for hook in hooks.values():
            asset_hash = hook["Properties"]["Code"]["S3Key"].removesuffix(".zip")
            (asset,) = outdir.glob(f"**/asset.{asset_hash}")
            assert (asset / "hookkit.py").read_text() == (ROOT / "lambda/shared/hookkit.py").read_text()
            assert (asset / "handler.py").exists()
            assert not (asset / "README.md").exists()
            found.add(asset_hash)
    # promotion, clean-up, interface drain, service-linked role: one asset each, whatever stacks use it
    assert len(found) == 4
