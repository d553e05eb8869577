"""Pipeline stack: the definitions SageMaker will run, the role they run as, and the Bedrock roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore.validate import ParamValidator

from processing.config import RunConfig
from processing.pipelines.parameters import ENVIRONMENT_FIELDS, pipeline_name, run_parameters
from processing.stages.registry import STAGES
from stacks.app_builder import build_app
from stacks.config import load_app_config
from stacks.pipeline_definition import (
    DECISION_STEP,
    FAIL_STEP,
    GATE_STEP,
    GATED_METRICS,
    IMAGE_ENTRYPOINT,
    PROMOTE_STEP,
    REJECTED_STEP,
)
from tests.stacks.conftest import ENVIRONMENTS, ROOT, cdk_context

CONFIG = load_app_config(cdk_context())
ON_DEMAND = {name for name, env in CONFIG.environments.items() if env.models.embedding.on_demand}

ANY_RUN_FILE = "/opt/ml/processing/input/chunks-run/parent_run.json"
TOKEN = "token-resolved-at-deploy"  # stands for any intrinsic; hostname-shaped like the domain endpoint


def render(value: Any) -> str:
    """A CloudFormation string expression rendered with a placeholder for every intrinsic it references."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    return TOKEN


def definitions(template: Template) -> dict[str, dict[str, Any]]:
    pipelines = template.find_resources("AWS::SageMaker::Pipeline")
    return {
        p["Properties"]["PipelineName"]: json.loads(
            render(p["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
        )
        for p in pipelines.values()
    }


def all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])


def expressions(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if set(value) & {"Get", "Std:Join", "Std:JsonGet"}:
            yield value
        for item in value.values():
            yield from expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from expressions(item)


def resolve(value: Any, defaults: dict[str, Any]) -> Any:
    """Replace pipeline expressions with values of the type they take at run time."""
    if isinstance(value, dict):
        if "Get" in value:
            path = value["Get"]
            if path.startswith("Parameters."):
                return defaults[path.removeprefix("Parameters.")]
            if path.endswith("S3Uri"):
                return "s3://ragops-dev-data-111111111111-us-east-1/runs/exec/out"
            return "pipelines-exec1234"
        if "Std:Join" in value:
            spec = value["Std:Join"]
            return spec["On"].join(str(resolve(v, defaults)) for v in spec["Values"])
        if "Std:JsonGet" in value:
            return 0.5
        return {k: resolve(v, defaults) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, defaults) for v in value]
    return value


@pytest.fixture(scope="module")
def pipeline_definitions(templates) -> dict[str, dict[str, dict[str, Any]]]:
    return {env: definitions(templates[f"{env}/Pipeline"]) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_two_pipelines_per_environment(pipeline_definitions, env):
    assert set(pipeline_definitions[env]) == {pipeline_name(env, "single"), pipeline_name(env, "multi")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_processing_arguments_validate_against_botocore_create_processing_job(pipeline_definitions, env):
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateProcessingJob")
    for definition in pipeline_definitions[env].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        processing = [s for s in all_steps(definition["Steps"]) if s["Type"] == "Processing"]
        assert processing
        for step in processing:
            request = {"ProcessingJobName": "pipelines-exec1234-step", **resolve(step["Arguments"], defaults)}
            report = ParamValidator().validate(request, shape.input_shape)
            assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_parameter_reference_is_declared_and_every_field_is_a_parameter(pipeline_definitions, env):
    for definition in pipeline_definitions[env].values():
        declared = {p["Name"] for p in definition["Parameters"]}
        assert {p.name for p in run_parameters()} <= declared
        used = {
            e["Get"].removeprefix("Parameters.")
            for e in expressions(definition["Steps"])
            if "Get" in e and e["Get"].startswith("Parameters.")
        }
        assert used <= declared, used - declared


def step_dependencies(definition: dict[str, Any]) -> dict[str, set[str]]:
    graph = {}
    for step in definition["Steps"]:
        refs = {e["Get"].split(".")[1] for e in expressions(step) if "Get" in e and e["Get"].startswith("Steps.")}
        nested = {s["Name"] for s in all_steps([step])}  # a branch's steps may read each other
        graph[step["Name"]] = (refs | set(step.get("DependsOn", []))) - nested
    return graph


def topological_order(graph: dict[str, set[str]]) -> list[str]:
    order, remaining = [], dict(graph)
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if deps <= set(order))
        assert ready, f"cycle among {sorted(remaining)}"
        order += ready
        for name in ready:
            del remaining[name]
    return order


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_multi_step_graph_is_acyclic_and_runs_the_stages_in_order(pipeline_definitions, env):
    definition = pipeline_definitions[env][pipeline_name(env, "multi")]
    order = topological_order(step_dependencies(definition))
    assert order == [stage.run_name for stage in STAGES] + [GATE_STEP]
    single = pipeline_definitions[env][pipeline_name(env, "single")]
    assert topological_order(step_dependencies(single)) == ["RAGPipeline", GATE_STEP]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ingest_is_sharded_by_s3_key_over_the_environments_instances_and_published_after(pipeline_definitions, env):
    definition = pipeline_definitions[env][pipeline_name(env, "multi")]
    steps = {step["Name"]: step["Arguments"] for step in definition["Steps"] if step["Type"] == "Processing"}
    counts = {name: args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] for name, args in steps.items()}
    assert counts.pop("DataIngestion") == CONFIG.environments[env].processing.instance_count
    assert set(counts.values()) == {1}
    # the chunk stage writes a shard file per ingest instance at least, so none is left without data
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert parameters["IngestInstances"] == CONFIG.environments[env].processing.instance_count
    inputs = {i["InputName"]: i["S3Input"] for i in steps["DataIngestion"]["ProcessingInputs"]}
    assert inputs["chunks"]["S3DataDistributionType"] == "ShardedByS3Key"
    chunks = "Steps.DataChunking.ProcessingOutputConfig.Outputs['chunks'].S3Output.S3Uri"
    assert inputs["chunks"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [{"Get": chunks}, "shards"]}}
    assert inputs["chunks"]["LocalPath"] == "/opt/ml/processing/input/chunks/shards"
    assert inputs["chunks-run"]["S3DataDistributionType"] == "FullyReplicated"  # every instance opens the parent run
    assert inputs["chunks-run"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [{"Get": chunks}, "parent_run.json"]}}
    arguments = steps["DataIngestion"]["AppSpecification"]["ContainerArguments"]
    assert arguments[:4] == ["--input", "chunks=/opt/ml/processing/input/chunks", "--parent-run-file", ANY_RUN_FILE]
    graph = step_dependencies(definition)
    assert "DataIngestion" in graph["IndexPublish"]
    assert "IndexPublish" in graph["RAGRetrieval"]
    publish = {i["InputName"]: i["S3Input"] for i in steps["IndexPublish"]["ProcessingInputs"]}
    assert {i["S3DataDistributionType"] for i in publish.values()} == {"FullyReplicated"}
    single = pipeline_definitions[env][pipeline_name(env, "single")]
    (job,) = [s for s in single["Steps"] if s["Type"] == "Processing"]
    assert job["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_index_name_is_the_alias_and_concurrency_and_retention_come_from_the_environment(pipeline_definitions, env):
    config = CONFIG.environments[env]
    for definition in pipeline_definitions[env].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        assert defaults["GenerationConcurrency"] == config.processing.generation_concurrency
        assert defaults["IndexRetentionHours"] == (
            config.cleanup.pipeline_execution_ttl_hours + config.cleanup.schedule_rate_hours
        )
        for step in (s for s in all_steps(definition["Steps"]) if s["Type"] == "Processing"):
            arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
            index = next(a for a in arguments if isinstance(a, dict) and "index_name=" in a["Std:Join"]["Values"])
            assert index == {"Std:Join": {"On": "", "Values": ["index_name=", {"Get": "Parameters.IndexName"}]}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_generator_gets_its_models_answer_budget_and_what_tgi_can_return(pipeline_definitions, env):
    """A DeepSeek-R1 distill reasons before it answers: the environment sizes its budget, not the run config's
    256-token default, and TGI is asked for no more alternatives than it returns (or the label measure cannot
    be used, and then the token-mean measure is)."""
    config = CONFIG.environments[env]
    for definition in pipeline_definitions[env].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        if not config.models.llm.enabled:
            assert (defaults["Generator"], defaults["ConfidenceMeasure"]) == ("extractive", "sequence_confidence")
            continue
        assert defaults["Generator"] == "sagemaker-tgi"
        assert defaults["MaxAnswerTokens"] == config.models.llm.max_answer_tokens >= 1024
        assert defaults["ReasoningRetryMaxTokens"] == config.models.llm.reasoning_retry_max_tokens
        assert (defaults["TopLogprobs"], defaults["ConfidenceMeasure"]) == (5, "decision_label")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gate_compares_each_threshold_and_promotes_or_fails_with_the_reason(pipeline_definitions, env, templates):
    for definition in pipeline_definitions[env].values():
        (gate,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
        paths = sorted(c["LeftValue"]["Std:JsonGet"]["Path"] for c in gate["Arguments"]["Conditions"])
        assert paths == sorted(f"metrics.{m}" for m in GATED_METRICS)
        promote, decision = gate["Arguments"]["IfSteps"]
        assert promote["Name"] == PROMOTE_STEP
        assert promote["Type"] == "Lambda"
        assert set(promote["Arguments"]) == {"environment", "execution_arn", "report_s3_uri", "image_uri", "git_sha"}
        assert promote["Arguments"]["environment"] == env
        assert promote["FunctionArn"].endswith(f":lambda:us-east-1:{_account(env)}:function:ragops-{env}-promotion")
        (fail,) = gate["Arguments"]["ElseSteps"]
        assert fail["Name"] == FAIL_STEP
        assert fail["Type"] == "Fail"
        assert "thresholds" in json.dumps(fail["Arguments"]["ErrorMessage"])
        assert decision["Name"] == DECISION_STEP


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_rejection_the_hook_returns_fails_the_execution_with_its_reasons(pipeline_definitions, env):
    """The hook returns a rejection (no Lambda error, no Errors alarm); the pipeline fails on the decision."""
    for definition in pipeline_definitions[env].values():
        (gate,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
        promote, decision = gate["Arguments"]["IfSteps"]
        outputs = {o["OutputName"]: o["OutputType"] for o in promote["OutputParameters"]}
        assert outputs == {"decision": "String", "failure_summary": "String"}
        (condition,) = decision["Arguments"]["Conditions"]
        assert condition == {
            "Type": "Equals",
            "LeftValue": {"Get": f"Steps.{PROMOTE_STEP}.OutputParameters['decision']"},
            "RightValue": "rejected",
        }
        (rejected,) = decision["Arguments"]["IfSteps"]
        assert (rejected["Name"], rejected["Type"]) == (REJECTED_STEP, "Fail")
        message = rejected["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
        assert message[1] == {"Get": f"Steps.{PROMOTE_STEP}.OutputParameters['failure_summary']"}
        assert decision["Arguments"]["ElseSteps"] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_thresholds_default_to_the_environment_config(pipeline_definitions, env, app):
    thresholds = next(s for s in app.node.children if s.node.id == env).config.promotion.thresholds
    for definition in pipeline_definitions[env].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        assert defaults["MinHitAtK"] == thresholds["hit_at_k"]
        assert defaults["MinMrr"] == thresholds["mrr"]
        assert defaults["MinAnswerEmbeddingCosine"] == thresholds["answer_embedding_cosine"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_jobs_run_in_the_vpc_with_kms_and_hand_off_under_the_run_prefix(pipeline_definitions, env):
    for definition in pipeline_definitions[env].values():
        for step in (s for s in all_steps(definition["Steps"]) if s["Type"] == "Processing"):
            args = step["Arguments"]
            assert args["NetworkConfig"]["VpcConfig"]["Subnets"]
            assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
            assert args["ProcessingOutputConfig"]["KmsKeyId"]
            assert args["Environment"]["MLFLOW_TRACKING_URI"]
            # what the evaluation report names, for the promotion hook to check (processing/pipelines/identity.py)
            assert args["Environment"]["RAGOPS_ENVIRONMENT"] == env
            assert args["Environment"]["RAGOPS_PIPELINE_EXECUTION_ARN"] == {"Get": "Execution.PipelineExecutionArn"}
            for output in args["ProcessingOutputConfig"]["Outputs"]:
                values = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
                assert values[0] == f"s3://ragops-{env}-data-{_account(env)}-us-east-1/runs"
                assert values[1] == {"Get": "Execution.PipelineExecutionId"}


def policy_statements(template: Template, logical_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if logical_id.startswith(logical_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def resources(statement: dict[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_policy_is_scoped_to_this_environments_resources(templates, env):
    statements = policy_statements(templates[f"{env}/Pipeline"], "ExecutionPolicy")
    by_action = {action: s for s in statements for action in actions(s)}
    assert all(a != "*" and not a.endswith(":*") for s in statements for a in actions(s))
    invoke = resources(by_action["sagemaker:InvokeEndpoint"])
    assert len(invoke) == (1 if env == "dev" else 2)  # the dev stage runs no LLM endpoint
    for endpoint in invoke:
        if env in ON_DEMAND:  # a literal ARN: no endpoint exists in the stack, a run creates it
            assert f":{_account(env)}:endpoint/ragops-{env}-" in render(endpoint)
        else:  # the Models stack's endpoint ARNs, by weak cross-stack reference
            assert endpoint["Fn::GetStackOutput"]["StackName"] == f"{env}-Models"
            assert "EndpointArn" in endpoint["Fn::GetStackOutput"]["OutputName"]
    domain = sorted(render(r) for r in resources(by_action["es:ESHttpPost"]))
    assert [d.split(":es:")[1] for d in domain] == [
        f"us-east-1:{_account(env)}:domain/ragops-{env}",
        f"us-east-1:{_account(env)}:domain/ragops-{env}/*",
    ]
    (judge,) = resources(by_action["bedrock:InvokeModel"])
    assert "foundation-model/anthropic.claude-3-haiku-20240307-v1:0" in render(judge)
    mlflow = resources(by_action["sagemaker-mlflow:LogBatch"])
    assert len(mlflow) == 1
    # SageMaker's documented trace actions, on the same tracking server: an export the role may not make is
    # dropped with a warning only (stacks/service_actions.py)
    for action in ("sagemaker-mlflow:StartTrace", "sagemaker-mlflow:EndTrace", "sagemaker-mlflow:SearchTraces"):
        assert resources(by_action[action]) == mlflow, action
    # Jobs run the stages' code: they may neither invoke the promotion hook nor start jobs or pass roles.
    assert not {"lambda:InvokeFunction", "iam:PassRole", "sagemaker:CreateProcessingJob"} & set(by_action)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pipeline_runs_as_its_own_role_which_alone_may_call_the_promotion_hook(templates, env):
    template = templates[f"{env}/Pipeline"]
    roles = template.find_resources("AWS::IAM::Role")
    (role_id,) = [logical for logical in roles if logical.startswith("PipelineRole")]
    (trust,) = roles[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    for pipeline in template.find_resources("AWS::SageMaker::Pipeline").values():
        assert pipeline["Properties"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    by_action = {a: s for s in policy_statements(template, "PipelineRoleDefaultPolicy") for a in actions(s)}
    assert sorted(by_action) == [
        "iam:PassRole",
        "kms:Decrypt",
        "lambda:InvokeFunction",
        "s3:GetObject",
        "sagemaker:AddTags",
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
    ]
    assert render(resources(by_action["lambda:InvokeFunction"])[0]).endswith(f":function:ragops-{env}-promotion")
    assert by_action["iam:PassRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    (passed,) = resources(by_action["iam:PassRole"])
    assert "Fn::ImportValue" in json.dumps(passed) or "GetStackOutput" in json.dumps(passed)  # the job role
    assert render(resources(by_action["s3:GetObject"])[0]).endswith(f"-data-{_account(env)}-us-east-1/runs/*")


def _account(env: str) -> str:
    return {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}[env]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_model_import_role_trusts_bedrock_for_this_account_only(templates, env):
    roles = templates[f"{env}/Pipeline"].find_resources("AWS::IAM::Role")
    (role,) = [r for logical, r in roles.items() if logical.startswith("ModelImportRole")]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": _account(env)}
    assert ":model-import-job/*" in render(trust["Condition"]["ArnLike"]["aws:SourceArn"])
    statements = policy_statements(templates[f"{env}/Pipeline"], "ModelImportRole")
    assert sorted(a for s in statements for a in actions(s)) == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pipeline_may_invoke_only_models_imported_into_this_account(templates, env):
    (statement,) = policy_statements(templates[f"{env}/Pipeline"], "InvokeImportedModels")
    assert actions(statement) == ["bedrock:InvokeModel"]
    assert render(resources(statement)[0]).endswith(f":bedrock:us-east-1:{_account(env)}:imported-model/*")


def test_definitions_are_byte_identical_across_synths(templates, tmp_path):
    again = build_app(
        cdk.App(context={**cdk_context(), "environments": "dev"}, outdir=str(tmp_path)), with_checks=False
    )
    stack = again.node.find_child("dev").node.find_child("Pipeline")
    fresh = Template.from_stack(stack).find_resources("AWS::SageMaker::Pipeline")
    first = templates["dev/Pipeline"].find_resources("AWS::SageMaker::Pipeline")
    assert json.dumps(fresh, sort_keys=False) == json.dumps(first, sort_keys=False)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_step_command_parses_with_the_cli_and_yields_a_valid_run_config(pipeline_definitions, env):
    """The container entry points are our CLI: each step's command line must parse, and its --set values validate."""
    from processing.cli import _parser
    from processing.config import load_config, parse_overrides

    for definition in pipeline_definitions[env].values():
        defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        for step in (s for s in all_steps(definition["Steps"]) if s["Type"] == "Processing"):
            spec = resolve(step["Arguments"]["AppSpecification"], defaults)
            assert spec["ContainerEntrypoint"][0] == IMAGE_ENTRYPOINT
            args = _parser().parse_args(spec["ContainerEntrypoint"][1:] + spec["ContainerArguments"])
            config = load_config(None, parse_overrides(args.overrides))
            assert config.min_mrr == defaults["MinMrr"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_specific_default_is_kept_out_of_promotion(pipeline_definitions, env):
    """A value the stack sets for one environment must never travel to the next one with a promotion."""
    generic = {p.name: getattr(RunConfig(), p.field) for p in run_parameters()}
    by_name = {p.name: p.field for p in run_parameters()}
    for definition in pipeline_definitions[env].values():
        specific = {
            by_name[p["Name"]]
            for p in definition["Parameters"]
            if p["Name"] in by_name and p["DefaultValue"] != generic[p["Name"]]
        }
        assert specific
        assert specific <= ENVIRONMENT_FIELDS, specific - ENVIRONMENT_FIELDS


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("stack", ["Pipeline", "Models"])
def test_operations_are_deleted_before_the_stacks_their_clean_up_works_on(app, env, stack):
    """The clean-up on delete stops the Pipeline stack's executions and deletes the run-time endpoints that run on
    the Models stack's configs: each a direct dependency, whatever one stack happens to reference of another."""
    stage = app.node.find_child(env)
    operations, other = stage.node.find_child("Operations"), stage.node.find_child(stack)
    assert other in operations.dependencies
    assert operations not in other.dependencies


def test_steps_start_through_the_images_entry_point_which_runs_our_cli_unprivileged():
    root = Path(__file__).resolve().parents[2]
    dockerfile = (root / "processing" / "Dockerfile").read_text()
    assert f'ENTRYPOINT ["{IMAGE_ENTRYPOINT}"]' in dockerfile
    script = (root / "processing" / "entrypoint.sh").read_text()
    # tini is PID 1 (a Python PID 1 without a handler ignores the SIGTERM of a stopped job), pinned to Debian's build
    assert "setpriv --reuid=ragops --regid=ragops --init-groups tini -- python -m processing" in script
    assert "tini=0.19.0-1+b3" in dockerfile
    # The script lands where the entry point names it: the package is copied under the image's WORKDIR.
    workdir = IMAGE_ENTRYPOINT.removesuffix("/processing/entrypoint.sh")
    assert f"WORKDIR {workdir}\n" in dockerfile
    assert "COPY processing/ ./processing/" in dockerfile


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_processing_image_is_built_with_the_cpu_build_of_torch(app, env):
    stack = next(s for s in app.node.find_all() if isinstance(s, cdk.Stack) and s.node.path == f"{env}/Pipeline")
    manifest = Path(app.outdir) / f"assembly-{env}" / f"{stack.artifact_id}.assets.json"
    images = json.loads(manifest.read_text())["dockerImages"].values()
    (image,) = images
    assert image["source"]["dockerBuildArgs"] == {"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu"}
    dockerfile = (ROOT / "processing" / "Dockerfile").read_text()
    assert '${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}' in dockerfile  # the arg reaches pip


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_processing_job_logs_get_the_environments_retention_without_owning_the_shared_group(templates, env):
    template = templates[f"{env}/Pipeline"]
    calls = {
        json.loads(r["Properties"]["Create"])["action"]: r for r in template.find_resources("Custom::AWS").values()
    }
    assert set(calls) == {"createLogGroup", "putRetentionPolicy"}
    create = json.loads(calls["createLogGroup"]["Properties"]["Create"])
    assert create["parameters"] == {"logGroupName": "/aws/sagemaker/ProcessingJobs"}
    assert create["ignoreErrorCodesMatching"] == "^ResourceAlreadyExistsException$"  # the account may have it
    retention = json.loads(calls["putRetentionPolicy"]["Properties"]["Update"])
    assert retention["parameters"]["retentionInDays"] == CONFIG.environments[env].log_retention_days
    assert all("Delete" not in r["Properties"] for r in calls.values())  # the group outlives the environment
    # The calls' own log and the interface drain's, never the shared group.
    template.resource_count_is("AWS::Logs::LogGroup", 2)
