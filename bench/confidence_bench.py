"""Confidence benchmark on the PubMedQA labelled set against an OpenAI-compatible server (vLLM, llama.cpp
server, Ollama): how well answer confidence separates correct from incorrect yes/no/maybe decisions (AUROC)
and how calibrated it is (ECE), and what early context pruning saves in prompt tokens and costs in quality.

    .venv/bin/python bench/confidence_bench.py --url http://127.0.0.1:8000/v1 --model NAME [--dataset PATH]
        [--limit 200] [--api-key-env VAR] [--set field=value ...]

The server can also be given as RAGOPS_GENERATOR_URL / RAGOPS_GENERATOR_MODEL. Each question is answered from
its own gold contexts (retrieval is left out, so only the confidence signal is measured): one answer from every
context (the baseline, whose confidence is scored) and one from the contexts left after pruning by draft
confidence. Labels are exact decision matches with final_decision. Without a reachable server that returns
log-probabilities it exits non-zero and writes nothing. Writes bench/results/confidence-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from processing.agent.answering import prune_with_baseline  # noqa: E402
from processing.agent.decision import parse_decision  # noqa: E402
from processing.confidence.assessment import assess  # noqa: E402
from processing.confidence.measures import auroc, calibration_report  # noqa: E402
from processing.confidence.parsing import LogprobsUnavailable  # noqa: E402
from processing.config import load_config, parse_overrides  # noqa: E402
from processing.datasets import QaRecord, load_dataset  # noqa: E402
from processing.generators.errors import GeneratorError  # noqa: E402
from processing.generators.openai_compatible import OpenAICompatibleGenerator  # noqa: E402
from processing.metrics.answer import token_f1  # noqa: E402
from processing.metrics.row import EvalRow  # noqa: E402
from processing.retry import RetryPolicy  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
EXIT_NO_SERVER = 3


def _f1(answer: str, reference: str) -> float:
    empty = np.zeros(1, dtype=np.float32)
    return token_f1(EvalRow("", (), frozenset(), 1, answer, reference, None, "", empty, empty))


def measure_question(generator: OpenAICompatibleGenerator, record: QaRecord, config: Any) -> dict[str, Any]:
    """Baseline (every context) and pruned answers of one question, scored and labelled."""
    result = prune_with_baseline(generator, record.question, record.contexts, config)
    baseline = result.baseline_answer
    assessment = assess(
        baseline, token_prob_threshold=config.low_confidence_token_prob, clarity_tokens=config.prompt_clarity_tokens
    )
    if not assessment.available:
        raise GeneratorError(f"question {record.record_id}: confidence unavailable ({assessment.unavailable_reason})")
    return {
        "question_id": record.record_id,
        "confidence": assessment.confidence,
        "flagged": bool(assessment.flags),
        "baseline_correct": parse_decision(baseline.text) == record.final_decision,
        "pruned_correct": parse_decision(result.answer.text) == record.final_decision,
        "baseline_token_f1": _f1(baseline.text, record.long_answer),
        "pruned_token_f1": _f1(result.answer.text, record.long_answer),
        "contexts": len(record.contexts),
        "contexts_kept": len(result.kept_indices),
        "prompt_tokens_saved": result.prompt_tokens_saved,
        "token_count_method": result.token_count_method,
        "baseline_prompt_tokens": baseline.prompt_tokens,
        "draft_prompt_tokens": result.draft_prompt_tokens,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUROC and ECE of baseline answer confidence vs decision correctness; pruning's saving and quality change."""
    scored = [r for r in rows if r["confidence"] is not None]
    confidences = [r["confidence"] for r in scored]
    correct = [r["baseline_correct"] for r in scored]
    try:
        signal: dict[str, Any] = {"auroc": auroc(confidences, correct)}
    except ValueError as error:
        signal = {"auroc": None, "auroc_skipped": str(error)}
    calibration = calibration_report(confidences, correct) if scored else None
    drafts = [r["draft_prompt_tokens"] for r in rows]
    saved = sum(r["prompt_tokens_saved"] for r in rows)
    return {
        **signal,
        "ece": None if calibration is None else calibration.expected_calibration_error,
        "reliability_bins": None if calibration is None else [vars(b) for b in calibration.bins],
        "scored_answers": len(scored),
        "mean_confidence": fmean(confidences) if scored else None,
        "flagged_answer_share": fmean(r["flagged"] for r in rows),
        "decision_accuracy_baseline": fmean(r["baseline_correct"] for r in rows),
        "decision_accuracy_pruned": fmean(r["pruned_correct"] for r in rows),
        "decision_accuracy_change": fmean(r["pruned_correct"] - r["baseline_correct"] for r in rows),
        "token_f1_change": fmean(r["pruned_token_f1"] - r["baseline_token_f1"] for r in rows),
        "pruned_context_share": 1 - sum(r["contexts_kept"] for r in rows) / sum(r["contexts"] for r in rows),
        "prompt_tokens_saved_total": saved,
        "prompt_tokens_saved_mean": saved / len(rows),
        "token_count_methods": sorted({r["token_count_method"] for r in rows}),
        "draft_prompt_tokens_total": None if None in drafts else sum(drafts),
        "net_prompt_tokens_saved": None if None in drafts else saved - sum(drafts),
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


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not (args.url and args.model):
        sys.exit(
            "no OpenAI-compatible server configured: pass --url and --model (or set RAGOPS_GENERATOR_URL and "
            "RAGOPS_GENERATOR_MODEL) for a vLLM, llama.cpp or Ollama server; nothing is measured without one"
        )
    if args.limit < 1:
        sys.exit("--limit must be at least 1")
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset}: not found; pass --dataset PATH")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        sys.exit(f"--api-key-env: environment variable {args.api_key_env} is not set")
    config = load_config(None, parse_overrides(args.overrides))
    generator = OpenAICompatibleGenerator(
        args.url,
        args.model,
        api_key=os.environ.get(args.api_key_env) if args.api_key_env else None,
        retry=RetryPolicy(max_attempts=3, initial_delay_s=0.5, max_delay_s=4.0),
    )
    records = load_dataset(args.dataset).records[: args.limit]
    started = time.perf_counter()
    try:
        rows = [measure_question(generator, record, config) for record in records]
    except (GeneratorError, LogprobsUnavailable) as error:
        print(f"error: no usable OpenAI-compatible server at {args.url}: {error}", file=sys.stderr)
        sys.exit(EXIT_NO_SERVER)
    result = {
        "dataset": args.dataset.name,
        "questions": len(rows),
        "server": args.url,
        "model": args.model,
        "labels": "exact decision match (yes/no/maybe) with final_decision",
        "confidence_of": "baseline answer (every gold context), reasoning excluded",
        "settings": {
            k: getattr(config, k)
            for k in (
                "prune_threshold",
                "prune_draft_tokens",
                "max_answer_tokens",
                "low_confidence_token_prob",
                "prompt_clarity_tokens",
            )
        },
        "decoding": "greedy (temperature 0)",
        "elapsed_s": time.perf_counter() - started,
        **summarize(rows),
        "per_question": rows,
    }
    out = (
        args.output
        or REPO_ROOT / "bench" / "results" / f"confidence-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_question", "reliability_bins")}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
