"""CI/CD trust: exact OIDC trust conditions, no wildcard action, only the bootstrap roles it needs, 1 h sessions."""

from __future__ import annotations

import copy
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from stacks.cicd_stack import CiCdStage, stage_id
from stacks.config import load_app_config
from tests.stacks.conftest import cdk_context

PROVIDER = "token.actions.githubusercontent.com"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
SUBJECT = "repo:example-org/ragops-on-aws"


def cicd_templates(templates: dict[str, Template]) -> dict[str, Template]:
    return {path: t for path, t in templates.items() if path.startswith("cicd-")}


def roles(template: Template) -> dict[str, dict[str, Any]]:
    """Roles keyed by their RoleName."""
    found = template.find_resources("AWS::IAM::Role")
    return {r["Properties"]["RoleName"]: r["Properties"] for r in found.values()}


def trust(subject: str) -> dict[str, Any]:
    provider_ref = {"Ref": Match.string_like_regexp("^GitHubOidc")}
    return {
        "Statement": [
            {
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{PROVIDER}:aud": "sts.amazonaws.com", f"{PROVIDER}:sub": subject}},
                "Effect": "Allow",
                "Principal": {"Federated": provider_ref},
            }
        ],
        "Version": "2012-10-17",
    }


def bootstrap_role(account: str, kind: str, region: str = "us-east-1") -> str:
    return f"arn:aws:iam::{account}:role/cdk-hnb659fds-{kind}-role-{account}-{region}"


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == sid]
    return found


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_one_cicd_stage_per_account_beside_unchanged_environment_stages(app):
    ids = [child.node.id for child in app.node.children if isinstance(child, cdk.Stage)]
    assert ids == ["dev", "staging", "prod", *(stage_id(a) for a in ACCOUNTS.values())]


def test_provider_is_github_with_sts_audience_and_no_thumbprints(templates):
    for path, template in cicd_templates(templates).items():
        template.resource_count_is("AWS::IAM::OIDCProvider", 1)
        (provider,) = template.find_resources("AWS::IAM::OIDCProvider").values()
        assert provider["Properties"]["Url"] == f"https://{PROVIDER}", path
        assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"], path
        assert "ThumbprintList" not in provider["Properties"], path


@pytest.mark.parametrize(("env", "account"), ACCOUNTS.items())
def test_deploy_role_trusts_exactly_this_repository_and_environment(templates, env, account):
    role = roles(templates[f"{stage_id(account)}/CiCd"])[f"ragops-{env}-github-deploy"]
    Template.from_json({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": role}}}).has_resource_properties(
        "AWS::IAM::Role", {"AssumeRolePolicyDocument": Match.object_equals(trust(f"{SUBJECT}:environment:{env}"))}
    )
    assert role["MaxSessionDuration"] == 3600


@pytest.mark.parametrize(("env", "account"), ACCOUNTS.items())
def test_deploy_role_may_only_assume_the_four_bootstrap_roles_and_run_its_own_pipelines(templates, env, account):
    (policy,) = roles(templates[f"{stage_id(account)}/CiCd"])[f"ragops-{env}-github-deploy"]["Policies"]
    bootstrap = statement(policy, "UseCdkBootstrapRoles")
    assert sorted(bootstrap["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert sorted(bootstrap["Resource"]) == sorted(
        bootstrap_role(account, kind) for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
    )
    pipelines = statement(policy, "RunPipelines")
    assert sorted(pipelines["Action"]) == [
        "sagemaker:DescribePipeline",
        "sagemaker:DescribePipelineExecution",
        "sagemaker:StartPipelineExecution",
    ]
    prefix = f"arn:aws:sagemaker:us-east-1:{account}:pipeline/ragops-{env}-"
    assert sorted(pipelines["Resource"]) == [
        f"{prefix}multi",
        f"{prefix}multi/execution/*",
        f"{prefix}single",
        f"{prefix}single/execution/*",
    ]
    record = statement(policy, "ReadPromotionDecisions")  # the decision log alone: the gate reads its history
    assert sorted(record["Action"]) == ["ssm:GetParameter", "ssm:GetParameterHistory"]
    assert record["Resource"] == f"arn:aws:ssm:us-east-1:{account}:parameter/ragops/{env}/last-promotion-decision"
    image = statement(policy, "PinProcessingImage")
    assert image["Action"] == "ecr:DescribeImages"
    assert image["Resource"] == (
        f"arn:aws:ecr:us-east-1:{account}:repository/cdk-hnb659fds-container-assets-{account}-us-east-1"
    )
    bucket = f"arn:aws:s3:::ragops-{env}-data-{account}-us-east-1"
    records = statement(policy, "ReadPromotionRecords")  # the run config is in the record the decision names
    assert sorted(records["Action"]) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert records["Resource"] == f"{bucket}/promotions/{env}/decisions/*"
    decrypt = statement(policy, "DecryptPromotionRecords")
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket}
    }
    assert len(policy["PolicyDocument"]["Statement"]) == 6


def test_pull_request_role_exists_only_in_devs_account(templates):
    """Pull-request code runs with this role: staging's and prod's accounts do not trust pull requests at all."""
    holders = {
        account
        for account in ACCOUNTS.values()
        if "ragops-github-pull-request" in roles(templates[f"{stage_id(account)}/CiCd"])
    }
    assert holders == {ACCOUNTS["dev"]}


def test_pull_request_role_reads_devs_templates_and_assumes_no_role(templates):
    role = roles(templates[f"{stage_id(ACCOUNTS['dev'])}/CiCd"])["ragops-github-pull-request"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {f"{PROVIDER}:aud": "sts.amazonaws.com", f"{PROVIDER}:sub": f"{SUBJECT}:pull_request"}
    }
    assert role["MaxSessionDuration"] == 3600
    (policy,) = role["Policies"]
    found = policy["PolicyDocument"]["Statement"]
    assert not [a for s in found for a in as_list(s["Action"]) if a.startswith("sts:")]  # no lookup role
    templates = statement(policy, "ReadDeployedTemplates")
    assert sorted(templates["Action"]) == ["cloudformation:DescribeStacks", "cloudformation:GetTemplate"]
    assert as_list(templates["Resource"]) == [f"arn:aws:cloudformation:us-east-1:{ACCOUNTS['dev']}:stack/dev-*/*"]
    version = statement(policy, "ReadBootstrapVersion")
    assert version["Action"] == "ssm:GetParameter"
    assert as_list(version["Resource"]) == [
        f"arn:aws:ssm:us-east-1:{ACCOUNTS['dev']}:parameter/cdk-bootstrap/hnb659fds/version"
    ]
    assert len(found) == 2


def test_an_unknown_pull_request_environment_is_refused():
    context = copy.deepcopy(cdk_context())
    context["ragops"]["cicd"]["pull_request_environments"] = ["qa"]
    with pytest.raises(ValueError, match=r"cicd\.pull_request_environments: qa not defined"):
        load_app_config(context)


def test_no_wildcard_action_and_no_managed_policy(templates):
    for path, template in cicd_templates(templates).items():
        for name, role in roles(template).items():
            assert "ManagedPolicyArns" not in role, f"{path} {name}"
            for policy in role["Policies"]:
                for s in policy["PolicyDocument"]["Statement"]:
                    assert s["Effect"] == "Allow"
                    for action in as_list(s["Action"]):
                        assert "*" not in action, f"{path} {name}: {action}"
        template.resource_count_is("AWS::IAM::Policy", 0)
        template.resource_count_is("AWS::IAM::ManagedPolicy", 0)


def stack_for(cicd: dict[str, Any], accounts: dict[str, str], regions: dict[str, str] | None = None) -> Template:
    """A CI/CD stack built straight from a changed copy of the committed context."""
    context = copy.deepcopy(cdk_context())
    context["ragops"]["cicd"] = cicd
    for env, account in accounts.items():
        context["ragops"]["environments"][env]["account"] = account
    for env, region in (regions or {}).items():
        block = context["ragops"]["environments"][env]
        block["region"] = region
    config = load_app_config(context)
    stage = CiCdStage(cdk.App(context=context), config.cicd, list(config.environments.values()))
    return Template.from_stack(stage.cicd)


def test_subject_prefix_from_config_is_used_verbatim():
    prefix = "repo:example-org@1234/ragops-on-aws@5678"
    template = stack_for(
        {"github_owner": "example-org", "github_repo": "ragops-on-aws", "subject_prefix": prefix},
        dict.fromkeys(ACCOUNTS, "444444444444"),
    )
    subjects = {
        name: r["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"][f"{PROVIDER}:sub"]
        for name, r in roles(template).items()
    }
    assert subjects == {
        "ragops-dev-github-deploy": f"{prefix}:environment:dev",
        "ragops-staging-github-deploy": f"{prefix}:environment:staging",
        "ragops-prod-github-deploy": f"{prefix}:environment:prod",
        "ragops-github-pull-request": f"{prefix}:pull_request",
    }


def test_shared_account_gets_one_provider_and_a_pull_request_role_for_dev_alone():
    template = stack_for(
        {
            "github_owner": "example-org",
            "github_repo": "ragops-on-aws",
            "bootstrap_qualifier": "ragops1",
            "pull_request_environments": ["dev", "prod"],
        },
        dict.fromkeys(ACCOUNTS, "444444444444"),
        regions={"prod": "eu-west-1"},
    )
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)
    found = roles(template)
    (policy,) = found["ragops-github-pull-request"]["Policies"]
    # Staging shares the account but is not listed: its stacks stay out of reach.
    assert sorted(as_list(statement(policy, "ReadDeployedTemplates")["Resource"])) == [
        "arn:aws:cloudformation:eu-west-1:444444444444:stack/prod-*/*",
        "arn:aws:cloudformation:us-east-1:444444444444:stack/dev-*/*",
    ]
    assert sorted(as_list(statement(policy, "ReadBootstrapVersion")["Resource"])) == [
        "arn:aws:ssm:eu-west-1:444444444444:parameter/cdk-bootstrap/ragops1/version",
        "arn:aws:ssm:us-east-1:444444444444:parameter/cdk-bootstrap/ragops1/version",
    ]
    (prod,) = found["ragops-prod-github-deploy"]["Policies"]
    assert (
        bootstrap_role("444444444444", "deploy", "eu-west-1").replace("hnb659fds", "ragops1")
        in statement(prod, "UseCdkBootstrapRoles")["Resource"]
    )


def test_no_cicd_stage_without_cicd_config(tmp_path):
    from stacks.app_builder import build_app

    context = copy.deepcopy(cdk_context())
    del context["ragops"]["cicd"]
    app = build_app(cdk.App(context=context, outdir=str(tmp_path)), with_checks=False)
    assert [c.node.id for c in app.node.children if isinstance(c, cdk.Stage)] == ["dev", "staging", "prod"]


def test_an_account_that_already_trusts_github_imports_its_provider_by_arn():
    template = stack_for(
        {
            "github_owner": "example-org",
            "github_repo": "ragops-on-aws",
            "existing_oidc_provider_accounts": ["444444444444"],
        },
        dict.fromkeys(ACCOUNTS, "444444444444"),
    )
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)  # nothing to collide with EntityAlreadyExists
    template.resource_count_is("Custom::AWSCDKOpenIdConnectProvider", 0)
    federated = {
        json.dumps(r["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"], sort_keys=True)
        for r in roles(template).values()
    }
    (principal,) = federated
    assert PROVIDER in principal
    assert "444444444444:oidc-provider/" in principal


def test_an_existing_provider_account_must_be_an_account_id():
    context = copy.deepcopy(cdk_context())
    context["ragops"]["cicd"]["existing_oidc_provider_accounts"] = ["not-an-account"]
    with pytest.raises(ValueError, match=r"existing_oidc_provider_accounts.*12-digit AWS account id"):
        load_app_config(context)
