"""The embedded LLM as generator and judge (what `make run` does): MLflow's four judge metrics are logged, each
with its coverage, whether or not a 135M model writes grades MLflow can parse, and the gate follows coverage."""

import json

import pytest

from processing.backends.mlflow_judge import JUDGE_METRICS
from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from tests.processing.helpers import runs_of, write_sample

EXPERIMENT = "e2e-local-judge"
CONFIG = RunConfig(experiment_name=EXPERIMENT, chunk_size=200, chunk_overlap=40, max_answer_tokens=48, judge="local")


@pytest.fixture(scope="module")
def judged(tmp_path_factory, embedder, local_llm, mlflow_db_uri):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
        root = tmp_path_factory.mktemp("judge")
        backends = Backends(CONFIG, embedder, generator_instance=local_llm)  # the judge shares this server
        parent, report = run_pipeline(CONFIG, write_sample(root / "data", 2), root / "work", backends=backends)
        evaluation = next(
            r
            for r in runs_of(mlflow_db_uri, EXPERIMENT)
            if r.data.tags.get("mlflow.parentRunId") == parent.run_id and r.info.run_name == "RAGEvaluation"
        )
        yield json.loads(report.read_text()), evaluation


def test_every_judge_metric_logs_its_coverage_and_a_mean_or_a_reason(judged) -> None:
    report, evaluation = judged
    metrics = evaluation.data.metrics
    for name in JUDGE_METRICS:
        coverage = metrics[f"{name}/coverage"]
        assert coverage in (0.0, 0.5, 1.0), name  # two questions
        if coverage:
            assert 1.0 <= metrics[f"{name}/mean"] <= 5.0
        else:
            assert report["skipped_metrics"][f"{name}/mean"].startswith("no row scored")
    assert metrics["judge_coverage"] == min(metrics[f"{n}/coverage"] for n in JUDGE_METRICS)
    assert evaluation.data.params["judge_model"] == "smollm2-135m-instruct"


def test_the_gate_follows_the_coverage(judged) -> None:
    report, evaluation = judged
    low = report["metrics"]["judge_coverage"] < CONFIG.min_judge_coverage
    assert report["quality_gate"]["passed"] is not low
    assert evaluation.data.tags["ragops.quality_gate"] == ("failed" if low else "passed")
