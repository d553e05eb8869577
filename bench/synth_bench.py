"""CDK synth time: the wall time of `cdk synth --quiet "**"` (every environment, cdk-nag gate included).

    .venv/bin/python bench/synth_bench.py [--rounds 3]

Writes bench/results/synth-<UTC timestamp>.json and prints it. The target is 45 s for all environments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
TARGET_SECONDS = 45.0


def synth_seconds(outdir: Path) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - this repository's pinned CDK CLI
        [str(CDK), "synth", "--quiet", "--output", str(outdir), "**"],
        cwd=REPO_ROOT,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="synths to time (default 3)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        rounds = [round(synth_seconds(Path(scratch) / f"round-{i}"), 2) for i in range(args.rounds)]
    result = {
        "benchmark": "cdk synth --quiet '**'",
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "rounds_seconds": rounds,
        "median_seconds": round(median(rounds), 2),
        "target_seconds": TARGET_SECONDS,
        "meets_target": median(rounds) <= TARGET_SECONDS,
    }
    out = REPO_ROOT / "bench" / "results" / f"synth-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
