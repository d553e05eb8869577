"""bench/confidence_bench.py against a real HTTP server on 127.0.0.1 serving recorded chat payloads; without a
server it must fail loudly and write nothing."""

from __future__ import annotations

import importlib.util
import json
import socket

import pytest

from processing.agent import prompts
from processing.interfaces import Message
from tests.processing.chat_server import chat_completion, prompt_word_count, serving, word_pieces
from tests.processing.helpers import REPO_ROOT

SPEC = importlib.util.spec_from_file_location("confidence_bench", REPO_ROOT / "bench" / "confidence_bench.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

# question -> (gold decision, answer the model gives, its token probability)
QUESTIONS = {
    "Does drug A lower blood pressure?": ("yes", "Yes, it lowers it.", 0.9),
    "Does drug B cure migraine?": ("no", "Yes, it cures it.", 0.8),
    "Does drug C raise heart rate?": ("no", "No, it does not.", 0.6),
    "Does drug D help sleep?": ("yes", "Maybe, results are mixed.", 0.3),
}
CONTEXTS = ["The relevant trial measured this outcome directly.", "An unrelated cohort of 40 patients was followed."]


def model(body: dict) -> tuple[int, dict]:
    question, contexts = prompts.parse_answer_prompt([Message(m["role"], m["content"]) for m in body["messages"]])
    if body["max_tokens"] == 16:  # a pruning draft: confident only from the relevant context
        prob = 0.9 if "relevant" in contexts[0] else 0.05
        return 200, chat_completion(word_pieces("The trial", prob), prompt_tokens=prompt_word_count(body))
    _, text, prob = QUESTIONS[question]
    return 200, chat_completion(word_pieces(text, prob), prompt_tokens=prompt_word_count(body))


@pytest.fixture
def dataset(tmp_path):
    records = {
        str(i): {"QUESTION": q, "CONTEXTS": CONTEXTS, "LONG_ANSWER": text, "final_decision": gold}
        for i, (q, (gold, text, _)) in enumerate(QUESTIONS.items())
    }
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_measures_auroc_ece_and_pruning_on_a_local_server(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_KEY", "k")
    out = tmp_path / "result.json"
    with serving(model) as server:
        bench.main(
            [
                *("--dataset", str(dataset), "--url", server.base_url, "--model", "m", "--api-key-env", "BENCH_KEY"),
                *("--output", str(out), "--set", "prune_threshold=-1.0"),
            ]
        )
        assert all(headers["Authorization"] == "Bearer k" for _, headers, _ in server.received)
    result = json.loads(out.read_text())
    assert result["questions"] == result["scored_answers"] == 4
    # correct {0.9, 0.6} vs incorrect {0.8, 0.3}: 3 of 4 pairs ordered right
    assert result["auroc"] == pytest.approx(0.75)
    assert result["ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert result["mean_confidence"] == pytest.approx(0.65)
    assert result["decision_accuracy_baseline"] == result["decision_accuracy_pruned"] == 0.5
    assert result["decision_accuracy_change"] == result["token_f1_change"] == 0.0
    assert result["pruned_context_share"] == 0.5
    dropped = len(CONTEXTS[1].split()) + len(prompts.CONTEXT_SEPARATOR.split())
    assert result["prompt_tokens_saved_total"] == 4 * dropped
    assert result["token_count_methods"] == ["generator"]
    assert result["net_prompt_tokens_saved"] == 4 * dropped - result["draft_prompt_tokens_total"]


def test_without_a_server_configured_it_exits_with_a_clear_message(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RAGOPS_GENERATOR_URL", raising=False)
    monkeypatch.delenv("RAGOPS_GENERATOR_MODEL", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--dataset", str(dataset), "--output", str(tmp_path / "r.json")])
    assert "no OpenAI-compatible server configured" in str(exit_info.value.code)
    assert not (tmp_path / "r.json").exists()


def test_an_unreachable_server_exits_non_zero_and_writes_nothing(dataset, tmp_path, capsys) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SystemExit) as exit_info:
        bench.main(
            [
                *("--dataset", str(dataset), "--url", f"http://127.0.0.1:{port}/v1", "--model", "m"),
                *("--output", str(tmp_path / "r.json"), "--limit", "1"),
            ]
        )
    assert exit_info.value.code == bench.EXIT_NO_SERVER
    assert f"no usable OpenAI-compatible server at http://127.0.0.1:{port}/v1" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_a_server_without_log_probabilities_gives_no_numbers(dataset, tmp_path, capsys) -> None:
    def no_logprobs(body: dict) -> tuple[int, dict]:
        status, response = model(body)
        response["choices"][0]["logprobs"] = None
        return status, response

    with serving(no_logprobs) as server, pytest.raises(SystemExit) as exit_info:
        bench.main(
            ["--dataset", str(dataset), "--url", server.base_url, "--model", "m", "--output", str(tmp_path / "r.json")]
        )
    assert exit_info.value.code == bench.EXIT_NO_SERVER
    assert "log-probabilities" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
