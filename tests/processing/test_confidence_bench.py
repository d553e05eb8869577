"""bench/confidence_bench.py against a real HTTP server on 127.0.0.1 serving recorded chat payloads, and on the
embedded model; without a usable server it must fail loudly and write nothing."""

from __future__ import annotations

import importlib.util
import json
import socket
from statistics import fmean

import pytest

from tests.processing.chat_server import chat_completion, prompt_word_count, serving, word_pieces
from tests.processing.helpers import REPO_ROOT, read_answer_prompt
from tests.processing.local_llm.processes import llama_servers

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
    question, contexts = read_answer_prompt(body["messages"])
    relevant = "relevant" in contexts[0]
    if body["max_tokens"] == 16:  # a pruning draft: confident only from the relevant context
        return 200, chat_completion(
            word_pieces("The trial", 0.9 if relevant else 0.05), prompt_tokens=prompt_word_count(body)
        )
    if len(contexts) == 1 and not relevant:  # a full answer from the unrelated context alone
        return 200, chat_completion(word_pieces("Maybe, unclear.", 0.2), prompt_tokens=prompt_word_count(body))
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


def _run(dataset, out, server) -> dict:
    bench.main(
        [
            *("--dataset", str(dataset), "--url", server.base_url, "--model", "m", "--api-key-env", "BENCH_KEY"),
            *("--output", str(out), "--set", "prune_threshold=-1.0"),
        ]
    )
    return json.loads(out.read_text())


def test_measures_every_confidence_measure_against_the_majority_baseline(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_KEY", "k")
    with serving(model) as server:
        result = _run(dataset, tmp_path / "result.json", server)
        assert all(headers["Authorization"] == "Bearer k" for _, headers, _ in server.received)
        assert len(server.received) == result["requests_sent"]  # a repeated greedy request is sent once
    assert result["questions"] == 4
    sequence, label = result["measures"]["sequence_confidence"], result["measures"]["decision_label"]
    # sequence confidence: correct {0.9, 0.6} vs incorrect {0.8, 0.3}: 3 of 4 pairs ordered right
    assert (sequence["auroc"], sequence["scored"]) == (pytest.approx(0.75), 4)
    assert sequence["ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    # label share 2p / (1 + p) (the " maybe" alternative holds (1 - p) / 2); "Maybe," and " maybe" are one label,
    # so the wrong "maybe" answer gets 1.0: correct {0.947, 0.75} vs incorrect {0.889, 1.0}: 1 of 4 pairs right
    assert label["auroc"] == pytest.approx(0.25)
    assert label["mean"] == pytest.approx(fmean([2 * p / (1 + p) for p in (0.9, 0.8, 0.6)] + [1.0]))
    assert result["best_measure"] == "sequence_confidence"
    assert result["decision_accuracy"] == 0.5
    assert (result["majority_label"], result["majority_label_accuracy"]) == ("yes", 0.5)
    assert result["answered_with_a_label_share"] == 1.0


def test_both_pruning_shapes_count_every_token_drafts_included(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_KEY", "k")
    with serving(model) as server:
        result = _run(dataset, tmp_path / "result.json", server)
    drop, best = result["pruning"]["drop_contexts"], result["pruning"]["best_candidate"]
    rows = result["per_question"]
    assert drop["baseline_tokens_total"] == sum(r["drop_contexts"]["baseline_tokens"] for r in rows)
    assert drop["net_tokens_saved"] == drop["baseline_tokens_total"] - drop["pruned_tokens_total"]
    assert drop["net_tokens_saved"] < 0  # two drafts of the whole prompt cost more than one dropped sentence saves
    assert drop["pruned_context_share"] == 0.5
    assert drop["decision_accuracy_change"] == 0.0
    assert best["net_tokens_saved"] == best["full_tokens_total"] - best["draft_tokens_total"]
    assert best["same_choice_share"] == 1.0  # drafts and full answers both rank the relevant context first
    assert best["decision_accuracy_full"] == best["decision_accuracy_draft"] == 0.5


def test_a_url_without_a_model_name_exits_with_a_clear_message(dataset, tmp_path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--dataset", str(dataset), "--url", "http://127.0.0.1:9/v1", "--output", str(tmp_path / "r.json")])
    assert "--url needs --model" in str(exit_info.value.code)
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


def test_runs_on_the_embedded_model_and_names_its_weights(tmp_path) -> None:
    records = {
        str(i): {
            "QUESTION": q,
            "CONTEXTS": [c, "An unrelated cohort of 40 patients was followed."],
            "LONG_ANSWER": c,
            "final_decision": gold,
        }
        for i, (q, c, gold) in enumerate(
            [
                ("Does aspirin lower the risk of a second heart attack?", "Daily aspirin lowered the risk.", "yes"),
                ("Does vitamin C cure the common cold?", "Vitamin C did not shorten colds in the trial.", "no"),
            ]
        )
    }
    dataset = tmp_path / "ori_pqal.json"
    dataset.write_text(json.dumps(records), encoding="utf-8")
    before = llama_servers()
    bench.main(["--dataset", str(dataset), "--output", str(tmp_path / "r.json"), "--set", "max_answer_tokens=24"])
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["server"] == "embedded llama-server"
    assert result["model"] == "smollm2-135m-instruct"
    assert len(result["generator_weights_sha256"]) == 64
    assert result["questions"] == 2
    assert result["pruning"]["drop_contexts"]["net_tokens_saved"] is not None  # llama.cpp reports every count
    assert llama_servers() - before == set()  # the bench stopped the server it started
