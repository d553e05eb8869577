"""Which run wrote an evaluation report: the promotion hook checks it against the execution it promotes.

The pipeline sets both variables on its processing jobs (stacks/pipeline_definition.py, stacks/pipeline_stack.py);
a local run has neither, and its report names no environment or execution.
"""

from __future__ import annotations

from collections.abc import Mapping

ENVIRONMENT_VARIABLE = "RAGOPS_ENVIRONMENT"
EXECUTION_VARIABLE = "RAGOPS_PIPELINE_EXECUTION_ARN"


def run_identity(environ: Mapping[str, str]) -> dict[str, str | None]:
    return {
        "environment": environ.get(ENVIRONMENT_VARIABLE) or None,
        "pipeline_execution_arn": environ.get(EXECUTION_VARIABLE) or None,
    }
