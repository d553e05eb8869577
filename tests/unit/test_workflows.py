"""GitHub workflows: the offline linters pass on the real files and catch an injected expression; structure rules.

The structure rules are the ones the linters do not enforce as strictly as this project wants: no
expression inside any script at all (values reach scripts through `env:` only), `permissions: {}` at the
top, actions pinned by full commit SHA with the version beside it, choice-typed dispatch inputs only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def actionlint(cwd: Path) -> subprocess.CompletedProcess[str]:
    files = sorted(str(p) for p in (cwd / ".github" / "workflows").glob("*.yml"))
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), *files],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def zizmor(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--persona=pedantic", "--no-progress", str(cwd / ".github")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy-environment.yml", "deploy.yml"]


def test_actionlint_passes_on_the_real_workflows():
    result = actionlint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_passes_on_the_real_workflows():
    result = zizmor(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def copy_of_the_repository(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # noqa: S607 - actionlint finds the project by it
    return tmp_path


def inject(path: Path, after: str, script: str) -> None:
    """Add a step whose script expands `script`'s expression, right after the step line `after`."""
    text = path.read_text()
    assert after in text
    indent = after[: len(after) - len(after.lstrip())]
    path.write_text(text.replace(after, f"{indent}- run: {script}\n{after}", 1))


@pytest.mark.parametrize(
    ("workflow", "before_step", "script", "actionlint_catches"),
    [
        ("ci.yml", "      - name: Lint\n", 'echo "${{ github.event.pull_request.title }}"', True),
        ("deploy-environment.yml", "      - name: Install\n", 'echo "${{ inputs.promoted-config }}"', False),
        ("deploy.yml", None, 'echo "${{ inputs.stop_after }}"', False),
    ],
)
def test_an_expression_injected_into_a_script_is_caught(
    copy_of_the_repository, workflow, before_step, script, actionlint_catches
):
    path = copy_of_the_repository / ".github" / "workflows" / workflow
    if before_step is None:  # deploy.yml only calls the reusable workflow: add a job that echoes the input
        text = path.read_text().replace(
            "jobs:\n",
            f"jobs:\n  echo:\n    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n    permissions: {{}}\n"
            f"    steps:\n      - run: {script}\n\n",
            1,
        )
        path.write_text(text)
    else:
        inject(path, before_step, script)

    result = zizmor(copy_of_the_repository)
    assert result.returncode != 0
    assert "template-injection" in result.stdout
    assert workflow in result.stdout
    if actionlint_catches:
        result = actionlint(copy_of_the_repository)
        assert result.returncode != 0
        assert "potentially untrusted" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_top_level_permissions_are_empty_and_every_job_grants_its_own(path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} has no permissions of its own"
        assert "write-all" not in str(job["permissions"])
        assert "read-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(path):
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines
    for line in lines:
        if "uses: $/" in line:  # a reusable workflow of this repository, at the running commit
            continue
        assert PINNED.match(line), f"{path.name}: not pinned to a commit with a version comment: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_any_script(path):
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: expression in script of step {step}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_have_timeouts_and_checkouts_keep_no_credentials(path):
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        if "uses" not in job:
            assert job.get("timeout-minutes"), f"{path.name}: job {name} has no timeout"
    for step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_dispatch_inputs_are_choices_only():
    for path in WORKFLOWS:
        triggers = load(path)["on"]
        dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
        for name, spec in ((dispatch or {}).get("inputs") or {}).items():
            assert spec["type"] == "choice", f"{path.name}: input {name} is {spec['type']}"
            assert spec["options"], f"{path.name}: input {name} has no options"


def test_ci_cancels_superseded_runs_and_deploys_never_cancel():
    assert load(WORKFLOWS[0])["concurrency"]["cancel-in-progress"] is True
    deploy = load(ROOT / ".github/workflows/deploy.yml")
    assert deploy["concurrency"]["cancel-in-progress"] is False
    job = load(ROOT / ".github/workflows/deploy-environment.yml")["jobs"]["deploy"]
    assert job["concurrency"]["cancel-in-progress"] is False


def test_pr_diff_runs_for_dev_alone_and_skips_forks():
    jobs = load(ROOT / ".github/workflows/ci.yml")["jobs"]
    diff, comment = jobs["cdk-diff"], jobs["cdk-diff-comment"]
    fork_guard = "github.event.pull_request.head.repo.full_name == github.repository"
    assert fork_guard in diff["if"]
    assert fork_guard in comment["if"]
    assert diff["permissions"] == {"contents": "read", "id-token": "write"}
    assert comment["permissions"] == {"pull-requests": "write"}
    roles = [e["role"] for e in diff["strategy"]["matrix"]["include"]]
    assert roles == ["${{ vars.CDK_DIFF_ROLE_ARN_DEV }}"]  # pull-request code never holds staging or prod credentials
    diff_script = next(s["run"] for s in diff["steps"] if "cdk diff" in s.get("run", ""))
    assert "--method template" in diff_script


def test_each_environment_deploys_with_oidc_pinned_to_its_account_and_passes_the_record_on():
    called = load(ROOT / ".github/workflows/deploy-environment.yml")
    job = called["jobs"]["deploy"]
    assert job["environment"] == "${{ inputs.environment }}"
    credentials = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert credentials
    for step in credentials:
        assert step["with"]["allowed-account-ids"] == "${{ vars.AWS_ACCOUNT_ID }}"
        assert step["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    scripts = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'cdk deploy "${ENVIRONMENT}/*" --require-approval never' in scripts
    assert job["outputs"]["promoted-config"] == "${{ steps.gate.outputs.promoted-config }}"

    chain = load(ROOT / ".github/workflows/deploy.yml")["jobs"]
    assert chain["staging"]["needs"] == "dev"
    assert chain["staging"]["with"]["promoted-config"] == "${{ needs.dev.outputs.promoted-config }}"
    assert chain["prod"]["needs"] == "staging"
    assert chain["prod"]["with"]["promoted-config"] == "${{ needs.staging.outputs.promoted-config }}"


def test_the_gate_reads_its_own_executions_decision_with_a_fresh_session():
    """Each wait fits in the deploy role's one-hour session; the decision is looked up by execution and commit."""
    workflow = load(ROOT / ".github" / "workflows" / "deploy-environment.yml")
    found = workflow["jobs"]["deploy"]["steps"]
    runs = [step.get("run", "") for step in found]
    execution = next(i for i, run in enumerate(runs) if "promotion_gate.py execution" in run)
    decision = next(i for i, run in enumerate(runs) if "promotion_gate.py decision" in run)
    assert execution < decision
    between = [step.get("uses", "") for step in found[execution + 1 : decision]]
    assert any(uses.startswith("aws-actions/configure-aws-credentials@") for uses in between)
    for flag in ('--execution-arn "$EXECUTION_ARN"', '--git-sha "$GITHUB_SHA"', '--parameter "$DECISIONS"'):
        assert flag in runs[decision]
    assert workflow["jobs"]["deploy"]["env"]["DECISIONS"].endswith("/last-promotion-decision")
