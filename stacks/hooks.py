"""What the project's Lambda hooks share: their runtime and code folder, and a provider that waits on them."""

from __future__ import annotations

import shutil
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.nag import acknowledge

LAMBDA_ROOT = Path(__file__).resolve().parents[1] / "lambda"
SHARED = LAMBDA_ROOT / "shared"  # what every hook imports (settings, clients, the waiting protocol)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "README.md")
# AwsSolutions-L1 (cdk-nag 3.0.2) accepts only the newest Python runtime aws-cdk-lib knows: python3.14.
RUNTIME = lambda_.Runtime.PYTHON_3_14
# The provider framework's own limit comes this long after the hook's: the hook fails first, naming what is
# left, instead of the framework's bare "Operation timed out".
BACKSTOP = cdk.Duration.minutes(5)


def hook_code(scope: Construct, name: str) -> lambda_.Code:
    """`lambda/<name>/` with the modules of `lambda/shared/` beside its handler, as the function's code.

    The two folders are copied into one staging folder under the cloud assembly at synth (no Docker, no bundling
    step a `--no-bundling` synth would skip). The asset hash is CDK's fingerprint of that folder's files, names
    and contents only, so the same sources give the same hash wherever and whenever they are synthesized.
    """
    staging = Path(cdk.Stage.of(scope).outdir) / "hook-sources" / name
    if staging.exists():
        shutil.rmtree(staging)
    for folder in (LAMBDA_ROOT / name, SHARED):
        shutil.copytree(folder, staging, ignore=IGNORED, dirs_exist_ok=True)
    return lambda_.Code.from_asset(str(staging))


def hook_role(
    scope: Construct, construct_id: str, *, log_group: logs.LogGroup, description: str, role_name: str | None = None
) -> iam.Role:
    """A Lambda role that may write to its function's own log group and nothing else yet."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        role_name=role_name,
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
        )
    )
    log_group_id = cdk.Stack.of(scope).get_logical_id(log_group.node.default_child)
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{log_group_id}.Arn>:log-stream:*]",
        "log streams are created at run time inside this function's own log group",
    )
    return role


def provider_handler(
    scope: Construct,
    *,
    code: str,
    description: str,
    role: iam.IRole,
    log_group: logs.ILogGroup,
    environment: dict[str, str],
) -> lambda_.Function:
    """A custom resource's own function (`lambda/<code>/`): one short call per poll, logging to its own group."""
    return lambda_.Function(
        scope,
        "Function",
        description=description,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler="handler.lambda_handler",
        code=hook_code(scope, code),
        role=role,
        memory_size=128,
        timeout=cdk.Duration.minutes(1),
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        environment=environment,
    )


def waiting_provider(
    scope: Construct,
    construct_id: str,
    *,
    handler: lambda_.IFunction,
    wait: cdk.Duration,
    poll: cdk.Duration,
    log_group: logs.ILogGroup,
) -> cr.Provider:
    """A custom-resource provider whose requests finish only when `handler` answers `IsComplete: true`.

    `handler` serves both calls: on-event (its answer carries what is-complete needs) and is-complete, which
    the framework repeats every `poll`. The handler gives up after `wait` with a message of its own; the
    framework's limit is `wait` plus `BACKSTOP`, and CloudFormation's for a custom resource is one hour.
    """
    total = wait.plus(BACKSTOP)
    if total.to_minutes() >= 60:
        raise ValueError(f"{construct_id}: wait {wait.to_minutes()} min leaves no room under CloudFormation's hour")
    provider = cr.Provider(
        scope,
        construct_id,
        on_event_handler=handler,
        is_complete_handler=handler,
        query_interval=poll,
        total_timeout=total,
        log_group=log_group,
    )
    stack = cdk.Stack.of(scope)
    acknowledge(
        provider,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "the CDK provider framework's own functions; they only log and invoke the hook and each other",
    )
    handler_id = stack.get_logical_id(handler.node.default_child)
    acknowledge(
        provider,
        f"AwsSolutions-IAM5[Resource::<{handler_id}.Arn>:*]",
        "the provider framework may invoke any version of the hook function, and nothing else",
    )
    for name in ("framework-isComplete", "framework-onTimeout"):
        framework_id = stack.get_logical_id(provider.node.find_child(name).node.default_child)
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::<{framework_id}.Arn>:*]",
            f"the waiter state machine may invoke any version of the framework's {name} function, and nothing else",
        )
    acknowledge(
        provider,
        "AwsSolutions-SF1",
        "CDK's provider-framework waiter: logging it would add CDK's log-delivery statement on '*' (including "
        "logs:PutResourcePolicy) to its role; its execution history records every attempt, and the hook logs each",
    )
    acknowledge(
        provider,
        "AwsSolutions-SF2",
        "CDK's provider-framework waiter has one task, the hook invoked again every poll interval; the execution "
        "history already shows each attempt and its result, all a trace of this loop would show",
    )
    return provider
