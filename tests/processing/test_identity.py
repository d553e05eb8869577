"""What an evaluation report says about the run that wrote it (the promotion hook refuses any other run's)."""

from __future__ import annotations

from processing.pipelines.identity import ENVIRONMENT_VARIABLE, EXECUTION_VARIABLE, run_identity

ARN = "arn:aws:sagemaker:us-east-1:111111111111:pipeline/ragops-dev-single/execution/a1b2c3d4e5f6"


def test_a_pipeline_run_names_its_environment_and_execution():
    environ = {ENVIRONMENT_VARIABLE: "dev", EXECUTION_VARIABLE: ARN}
    assert run_identity(environ) == {"environment": "dev", "pipeline_execution_arn": ARN}


def test_a_local_run_names_none_so_it_can_never_be_promoted():
    assert run_identity({ENVIRONMENT_VARIABLE: ""}) == {"environment": None, "pipeline_execution_arn": None}
