"""The whole loop with generator=openai against a real HTTP server on 127.0.0.1 serving recorded
OpenAI-format chat payloads with log-probabilities: pruning, confidence routing, MLflow confidence metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from processing.config import RunConfig
from processing.context import Backends
from processing.runner import run_pipeline
from tests.processing.chat_server import chat_completion, prompt_word_count, serving, word_pieces
from tests.processing.helpers import read_answer_prompt, write_sample

EXPERIMENT = "e2e-openai-confidence"
REASONING = [("<think>", 0.99), ("\nThe", 0.95), (" context", 0.95), (" covers", 0.95), (" it.", 0.95)]
CLOSE = [("\n</think>", 0.99), ("\n\n", 0.99)]
# question keyword -> (answer, token probability of the first answer, of later answers); gold: yes, no, yes, no
SCRIPT = {
    "versioning": ("Yes, earlier versions are kept.", 0.9, 0.9),  # confident, correct
    "availability zone": ("Yes, one zone is enough.", 0.88, 0.88),  # confident, wrong
    "time-to-live": ("Yes, shorter TTLs speed failover.", 0.3, 0.85),  # unsure, retried, then confident, correct
    "autoscaling": ("Yes, autoscaling prevents spikes.", 0.2, 0.2),  # unsure twice: abstains (wrong candidate)
}
DRAFT_TOKENS = 8


class ScriptedModel:
    """What the server 'generates': drafts are confident for a context naming the question's topic."""

    def __init__(self) -> None:
        self.answered: dict[str, int] = {}

    def __call__(self, body: dict) -> tuple[int, dict]:
        question, contexts = read_answer_prompt(body["messages"])
        key = next(k for k in SCRIPT if k in question.lower())
        if body["max_tokens"] == DRAFT_TOKENS:
            prob = 0.9 if key.split()[0] in contexts[0].lower() else 0.1
            return 200, chat_completion(word_pieces("The context", prob), prompt_tokens=prompt_word_count(body))
        text, first, later = SCRIPT[key]
        prob = later if self.answered.get(key) else first
        self.answered[key] = self.answered.get(key, 0) + 1
        pieces = [*REASONING, *CLOSE, *word_pieces(text, prob)]
        return 200, chat_completion(pieces, prompt_tokens=prompt_word_count(body))


@pytest.fixture(scope="module")
def run(tmp_path_factory, embedder, mlflow_db_uri):
    with pytest.MonkeyPatch.context() as patch, serving(ScriptedModel()) as server:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
        patch.setenv("RAGOPS_TEST_KEY", "local-test-key")
        root = tmp_path_factory.mktemp("openai")
        config = RunConfig(
            experiment_name=EXPERIMENT,
            chunk_size=200,
            chunk_overlap=20,
            top_k=2,
            generator="openai",
            generator_url=server.base_url,
            generator_model="deepseek-r1-distill-qwen-7b",
            generator_api_key_env="RAGOPS_TEST_KEY",
            max_answer_tokens=64,
            confidence_measure="sequence_confidence",
            prune_contexts=True,
            prune_threshold=math.log(0.5),
            prune_draft_tokens=DRAFT_TOKENS,
        )
        parent, report = run_pipeline(
            config, write_sample(root / "data", 4), root / "work", backends=Backends(config, embedder)
        )
        yield {"parent": parent, "report": json.loads(report.read_text()), "server": server, "uri": mlflow_db_uri}


def test_every_request_asks_for_greedy_log_probabilities_with_the_key(run) -> None:
    received = run["server"].received
    assert received
    for path, headers, body in received:
        assert path == "/v1/chat/completions"
        assert headers["Authorization"] == "Bearer local-test-key"
        assert (body["logprobs"], body["top_logprobs"], body["temperature"]) == (True, 10, 0)


def test_report_holds_the_confidence_metrics(run) -> None:
    confidence = run["report"]["confidence_metrics"]
    assert confidence["mean_sequence_confidence"] == pytest.approx((0.9 + 0.88 + 0.85 + 0.2) / 4)
    assert confidence["mean_reasoning_confidence"] == pytest.approx(0.95)
    # correct {0.9, 0.85} vs incorrect {0.88, 0.2 (the abstained-on candidate)}: 3 of 4 pairs ordered right
    assert confidence["confidence_auroc"] == pytest.approx(0.75)
    assert confidence["confidence_retry_rate"] == 0.5
    assert confidence["confidence_abstain_rate"] == 0.25
    assert confidence["flagged_answer_share"] == 0.25
    assert confidence["prompt_tokens_saved_total"] > 0
    assert 0.0 < confidence["pruned_context_share"] < 1.0
    assert {f"pruning_{m}_change" for m in ("token_f1", "answer_embedding_cosine", "decision_accuracy")} <= set(
        confidence
    )
    assert "confidence_auroc" not in run["report"]["skipped_metrics"]


def test_mlflow_holds_the_confidence_metrics_table_and_plots(run) -> None:
    client = MlflowClient(run["uri"])
    parent_id = run["parent"].run_id
    children = {
        r.info.run_name: r
        for r in client.search_runs(
            [run["parent"].experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
        )
    }
    assert children["RAGRetrieval"].data.params["confidence"] == "available"
    evaluation = children["RAGEvaluation"]
    assert evaluation.data.metrics["confidence_auroc"] == pytest.approx(0.75)
    assert "confidence_ece" in evaluation.data.metrics
    assert client.get_run(parent_id).data.metrics["mean_sequence_confidence"] == pytest.approx(0.7075)
    artifacts = {a.path for a in client.list_artifacts(evaluation.info.run_id)}
    assert {"per_question.json", "confidence_vs_correctness.png", "reliability_diagram.png"} <= artifacts
    table = json.loads(Path(client.download_artifacts(evaluation.info.run_id, "per_question.json")).read_text())
    columns = table["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in table["data"]]
    assert [r["confidence_route"] for r in rows] == ["accepted", "accepted", "accepted", "abstain"]
    assert [r["retries"] for r in rows] == [0, 0, 1, 1]
    assert rows[3]["abstain_reason"].startswith(
        "answer sequence_confidence 0.200 below confidence_threshold 0.5 after 1 retry"
    )
    assert [r["correct"] for r in rows] == [True, False, True, False]
    assert {r["token_count_method"] for r in rows if r["contexts_kept"] is not None} == {"generator"}
    assert rows[3]["flagged_spans"] == "Yes, autoscaling prevents spikes."
