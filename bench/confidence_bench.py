"""Confidence benchmark on the PubMedQA labelled set: how well each confidence measure separates correct from
incorrect yes/no/maybe decisions (AUROC) and how calibrated it is (ECE), decision accuracy beside the
majority-label baseline, and what both pruning shapes save or cost with every token counted.

    .venv/bin/python bench/confidence_bench.py [--limit 200] [--dataset PATH] [--set field=value ...]
        [--url http://127.0.0.1:8000/v1 --model NAME [--api-key-env VAR]]

Without --url it starts the embedded model (the run config's `local_llm_model`) on its own llama-server and
stops it at the end; --url (or RAGOPS_GENERATOR_URL / RAGOPS_GENERATOR_MODEL) measures another
OpenAI-compatible server instead. Each question is answered from its own gold contexts (retrieval is left out,
so only the confidence signal is measured). Labels are exact decision matches with final_decision.

Pruning, both shapes, every call's prompt and completion tokens counted (drafts included):
- drop_contexts: one draft per context, drop the unconfident ones, answer from the rest; against one answer
  from every context.
- best_candidate: each context is a candidate; draft all, generate only the best-ranked in full; against
  generating every candidate in full and keeping the best-ranked full answer.
Decoding is greedy, so an identical request is sent once and its reply reused by the arms that make it; each arm
is still charged the tokens of every call it makes. Fails non-zero and writes nothing without a usable server.
Writes bench/results/confidence-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from processing.agent import prompts  # noqa: E402
from processing.agent.decision import parse_decision  # noqa: E402
from processing.confidence.assessment import AnswerAssessment, assess  # noqa: E402
from processing.confidence.measures import auroc, calibration_report  # noqa: E402
from processing.confidence.parsing import LogprobsUnavailable  # noqa: E402
from processing.confidence.pruning import (  # noqa: E402
    best_candidate_by_draft,
    best_candidate_in_full,
    prune_and_answer,
    total_tokens,
)
from processing.config import RunConfig, load_config, parse_overrides  # noqa: E402
from processing.datasets import QaRecord, load_dataset  # noqa: E402
from processing.generators.errors import GeneratorError  # noqa: E402
from processing.interfaces import Generation, Generator, Message  # noqa: E402
from processing.metrics.answer import token_f1  # noqa: E402
from processing.metrics.row import EvalRow  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
EXIT_NO_SERVER = 3
# measure name -> how to read it from an assessment; each is a probability in [0, 1]
MEASURES: dict[str, Callable[[AnswerAssessment], float | None]] = {
    "sequence_confidence": lambda a: a.answer["sequence_confidence"],
    "min_token_prob": lambda a: a.answer["min_token_prob"],
    "mean_top_margin": lambda a: a.answer["mean_top_margin"],
    "prompt_clarity": lambda a: a.prompt_clarity,
    "decision_label": lambda a: a.decision_label_confidence,
}


class ReplayingGenerator:
    """Sends each distinct request once: greedy decoding makes a repeat's reply the same, so arms share it."""

    def __init__(self, inner: Generator) -> None:
        self.inner, self.model_id = inner, inner.model_id
        self._replies: dict[str, Generation] = {}
        self.calls_sent = 0

    def generate(self, messages: Sequence[Message], *, max_tokens: int, logprobs: bool = False) -> Generation:
        key = json.dumps([[m.role, m.content] for m in messages] + [max_tokens, logprobs])
        if key not in self._replies:
            self._replies[key] = self.inner.generate(messages, max_tokens=max_tokens, logprobs=logprobs)
            self.calls_sent += 1
        return self._replies[key]

    def forget(self) -> None:
        self._replies.clear()  # requests never repeat across questions


def _f1(answer: str, reference: str) -> float:
    empty = np.zeros(1, dtype=np.float32)
    return token_f1(EvalRow("", (), frozenset(), 1, answer, reference, None, "", empty, empty))


def measure_question(generator: Generator, record: QaRecord, config: RunConfig) -> dict[str, Any]:
    """The baseline answer's confidence measures, and both pruning shapes against their unpruned arms."""
    draft_tokens = min(config.prune_draft_tokens, config.max_answer_tokens)
    dropped = prune_and_answer(
        generator,
        record.question,
        record.contexts,
        prompts.answer_messages,
        threshold=config.prune_threshold,
        draft_max_tokens=draft_tokens,
        answer_max_tokens=config.max_answer_tokens,
        with_baseline=True,
        answer_logprobs=True,
    )
    baseline = dropped.baseline_answer
    assessment = assess(
        baseline, token_prob_threshold=config.low_confidence_token_prob, clarity_tokens=config.prompt_clarity_tokens
    )
    if not assessment.available:
        raise GeneratorError(f"question {record.record_id}: confidence unavailable ({assessment.unavailable_reason})")
    candidates = [[context] for context in record.contexts]
    by_draft = best_candidate_by_draft(
        generator,
        record.question,
        candidates,
        prompts.answer_messages,
        draft_max_tokens=draft_tokens,
        answer_max_tokens=config.max_answer_tokens,
    )
    in_full = best_candidate_in_full(
        generator, record.question, candidates, prompts.answer_messages, answer_max_tokens=config.max_answer_tokens
    )
    gold = record.final_decision
    return {
        "question_id": record.record_id,
        "gold_decision": gold,
        "decision": parse_decision(baseline.text),
        "correct": parse_decision(baseline.text) == gold,
        "completion_tokens": baseline.completion_tokens,
        **{name: read(assessment) for name, read in MEASURES.items()},
        "flagged": bool(assessment.flags),
        "drop_contexts": {
            "contexts": len(record.contexts),
            "kept": len(dropped.kept_indices),
            "baseline_tokens": total_tokens([baseline]),
            "pruned_tokens": dropped.pruned_arm_tokens,
            "correct_change": int(parse_decision(dropped.answer.text) == gold)
            - int(parse_decision(baseline.text) == gold),
            "token_f1_change": _f1(dropped.answer.text, record.long_answer) - _f1(baseline.text, record.long_answer),
        },
        "best_candidate": {
            "candidates": len(candidates),
            "same_choice": by_draft.chosen == in_full.chosen,
            "full_tokens": in_full.tokens,
            "draft_tokens": by_draft.tokens,
            "full_correct": parse_decision(in_full.answer.text) == gold,
            "draft_correct": parse_decision(by_draft.answer.text) == gold,
        },
    }


def separation(rows: Sequence[dict[str, Any]], measure: str) -> dict[str, Any]:
    """AUROC and ECE of one measure against decision correctness, over the answers it could score."""
    scored = [(r[measure], r["correct"]) for r in rows if r[measure] is not None]
    result: dict[str, Any] = {"scored": len(scored), "mean": fmean(s for s, _ in scored) if scored else None}
    if not scored:
        return result | {"auroc": None, "ece": None, "skipped": "no answer could be scored"}
    confidences, correct = zip(*scored, strict=True)
    result["ece"] = calibration_report(confidences, correct).expected_calibration_error
    try:
        result["auroc"] = auroc(confidences, correct)
    except ValueError as error:
        result |= {"auroc": None, "skipped": str(error)}
    return result


def _net(rows: Sequence[dict[str, Any]], shape: str, unpruned: str, pruned: str) -> dict[str, int | None]:
    spent = {arm: [r[shape][arm] for r in rows] for arm in (unpruned, pruned)}
    if any(None in values for values in spent.values()):
        return {f"{unpruned}_total": None, f"{pruned}_total": None, "net_tokens_saved": None}
    totals = {arm: sum(values) for arm, values in spent.items()}
    return {
        f"{unpruned}_total": totals[unpruned],
        f"{pruned}_total": totals[pruned],
        "net_tokens_saved": totals[unpruned] - totals[pruned],
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    gold = Counter(r["gold_decision"] for r in rows)
    majority, majority_count = gold.most_common(1)[0]
    measures = {name: separation(rows, name) for name in MEASURES}
    ranked = sorted((m for m in measures if measures[m]["auroc"] is not None), key=lambda m: -measures[m]["auroc"])
    drop = [r["drop_contexts"] for r in rows]
    best = [r["best_candidate"] for r in rows]
    return {
        "decision_accuracy": fmean(r["correct"] for r in rows),
        "majority_label": majority,
        "majority_label_accuracy": majority_count / len(rows),
        "gold_label_counts": dict(gold),
        "answered_with_a_label_share": fmean(r["decision_label"] is not None for r in rows),
        "measures": measures,
        "best_measure": ranked[0] if ranked else None,
        "flagged_answer_share": fmean(r["flagged"] for r in rows),
        "pruning": {
            "drop_contexts": {
                **_net(rows, "drop_contexts", "baseline_tokens", "pruned_tokens"),
                "pruned_context_share": 1 - sum(d["kept"] for d in drop) / sum(d["contexts"] for d in drop),
                "decision_accuracy_change": fmean(d["correct_change"] for d in drop),
                "token_f1_change": fmean(d["token_f1_change"] for d in drop),
            },
            "best_candidate": {
                **_net(rows, "best_candidate", "full_tokens", "draft_tokens"),
                "decision_accuracy_full": fmean(b["full_correct"] for b in best),
                "decision_accuracy_draft": fmean(b["draft_correct"] for b in best),
                "decision_accuracy_change": fmean(b["draft_correct"] - b["full_correct"] for b in best),
                "same_choice_share": fmean(b["same_choice"] for b in best),
            },
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--url", default=os.environ.get("RAGOPS_GENERATOR_URL", ""), help="API root, e.g. .../v1")
    parser.add_argument("--model", default=os.environ.get("RAGOPS_GENERATOR_MODEL", ""), help="served model name")
    parser.add_argument("--api-key-env", default="", help="name of the env var holding the API key, if any")
    parser.add_argument("--limit", type=int, default=200, help="questions to answer (default 200)")
    parser.add_argument("--output", type=Path, help="result file (default bench/results/confidence-<ts>.json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    return parser


def _generator(args: argparse.Namespace, config: RunConfig) -> tuple[Generator, dict[str, Any]]:
    """The server under test and how to name it in the result."""
    if args.url:
        from processing.generators.openai_compatible import OpenAICompatibleGenerator
        from processing.retry import RetryPolicy

        generator = OpenAICompatibleGenerator(
            args.url,
            args.model,
            api_key=os.environ.get(args.api_key_env) if args.api_key_env else None,
            top_logprobs=config.top_logprobs,
            retry=RetryPolicy(max_attempts=3, initial_delay_s=0.5, max_delay_s=4.0),
        )
        return generator, {"server": args.url, "model": args.model}
    from processing.backends.factory import build_generator

    generator = build_generator(config.model_copy(update={"generator": "local"}), embedder=None)
    return generator, {"server": "embedded llama-server", "model": generator.model_id, **generator.params()}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.url and not args.model:
        sys.exit("--url needs --model (or RAGOPS_GENERATOR_MODEL): the name the server serves")
    if args.limit < 1:
        sys.exit("--limit must be at least 1")
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset}: not found; pass --dataset PATH")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        sys.exit(f"--api-key-env: environment variable {args.api_key_env} is not set")
    config = load_config(None, parse_overrides(args.overrides))
    records = load_dataset(args.dataset).records[: args.limit]
    try:
        inner, served = _generator(args, config)
    except (GeneratorError, RuntimeError) as error:
        print(f"error: no usable generator: {error}", file=sys.stderr)
        sys.exit(EXIT_NO_SERVER)
    generator = ReplayingGenerator(inner)
    started = time.perf_counter()
    rows = []
    try:
        for record in records:
            rows.append(measure_question(generator, record, config))
            generator.forget()
    except (GeneratorError, LogprobsUnavailable) as error:
        print(f"error: no usable OpenAI-compatible server at {served['server']}: {error}", file=sys.stderr)
        sys.exit(EXIT_NO_SERVER)
    finally:
        if hasattr(inner, "close"):
            inner.close()
    elapsed = time.perf_counter() - started
    result = {
        "dataset": args.dataset.name,
        "questions": len(rows),
        **served,
        "labels": "exact decision match (yes/no/maybe) with final_decision",
        "confidence_of": "answer from every gold context, reasoning excluded",
        "settings": {
            k: getattr(config, k)
            for k in (
                "prune_threshold",
                "prune_draft_tokens",
                "max_answer_tokens",
                "low_confidence_token_prob",
                "prompt_clarity_tokens",
                "top_logprobs",
            )
        },
        "decoding": "greedy (temperature 0)",
        "elapsed_s": elapsed,
        "requests_sent": generator.calls_sent,
        "seconds_per_question": elapsed / len(rows),
        **summarize(rows),
        "per_question": rows,
    }
    out = (
        args.output
        or REPO_ROOT / "bench" / "results" / f"confidence-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "per_question"}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
