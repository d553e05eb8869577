"""Wall time of `make run`, warm and from nothing.

    .venv/bin/python bench/make_run_bench.py [--only warm|from-nothing] [--keep]

warm: `make run` in this checkout, with its .venv and llama-server already built (what a second `make run`
costs). Target 5 minutes.

from nothing: a fresh `git clone` of this checkout's HEAD commit (commit what you want measured) into a
temporary directory, then `make run` there, with empty caches so nothing built on this machine before is
reused: its own .venv, an empty pip cache (PIP_CACHE_DIR), an empty npm cache (npm_config_cache; `make run`
does not install the CDK CLI, so this only guards against it starting to) and an empty llama-server build
cache (RAGOPS_CACHE_DIR, which `processing/local_llm/build-llama-server.sh` otherwise keeps per machine). So the
time includes creating the environment from the registries and compiling llama-server. Target 20 minutes.

Writes bench/results/make-run-<UTC timestamp>.json with each measurement; the seconds at which the packages were
installed, the server compiled (from nothing), the first run started and the comparison started (PHASE_MARKS);
the machine's cores and load average before and after (the machine may be shared: the load says how busy it was)
and the commit measured. Exits 1 when a measured time misses its target, 2 when `make run` itself fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import write_result

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = {"warm": 5 * 60.0, "from-nothing": 20 * 60.0}
LOG_TAIL_CHARS = 4000


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)  # noqa: S603, S607 - the developer's git
    return done.stdout.strip()


def _shell_env() -> dict[str, str]:
    """This environment as a shell would give it to `make run`: without an outer make's flags and level (when
    `make bench-run` starts this), an active venv or an MLflow tracking setting."""
    dropped = ("VIRTUAL_ENV", "MLFLOW_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def _machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}


# Where the time went: the seconds at which each of these first appears in the output (recipe lines that make
# echoes, and the build script's last line).
PHASE_MARKS = {
    "packages_installed": "touch .venv/.installed",
    "server_compiled": "build-llama-server: compiled in",
    "first_run_started": "-m processing run ",
    "comparison_started": "-m processing compare",
}


def timed_make_run(checkout: Path, env: dict[str, str], log: Path) -> tuple[float, int, dict[str, float]]:
    """(seconds, exit status, phase marks) of `make run` in `checkout`; its output goes to `log`, each line
    prefixed with the seconds since the start."""
    started = time.perf_counter()
    marks: dict[str, float] = {}
    with (
        log.open("w", encoding="utf-8") as out,
        subprocess.Popen(
            ["make", "run"],  # noqa: S607 - the developer's make
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as make,
    ):
        assert make.stdout is not None
        for line in make.stdout:
            elapsed = time.perf_counter() - started
            out.write(f"[{elapsed:7.1f}s] {line}")
            out.flush()
            for mark, text in PHASE_MARKS.items():
                if text in line and mark not in marks:
                    marks[mark] = round(elapsed, 1)
        status = make.wait()
    return time.perf_counter() - started, status, marks


def measure(kind: str, checkout: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    before = _machine()
    seconds, status, marks = timed_make_run(checkout, env, log)
    result = {
        "seconds": round(seconds, 1),
        "phase_marks_seconds": marks,
        "target_seconds": TARGET_SECONDS[kind],
        "within_target": status == 0 and seconds <= TARGET_SECONDS[kind],
        "exit_status": status,
        "machine_before": before,
        "machine_after": _machine(),
        "log": str(log),
    }
    if status:
        result["log_tail"] = log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
    return result


def from_nothing(scratch: Path, commit: str, log: Path) -> dict[str, Any]:
    """A fresh clone of `commit` with its own venv and empty pip, npm and llama-server caches."""
    clone = scratch / "clone"
    _git("clone", "--quiet", "--no-local", str(REPO_ROOT), str(clone))
    _git("-C", str(clone), "checkout", "--quiet", "--detach", commit)
    caches = {"PIP_CACHE_DIR": "pip", "npm_config_cache": "npm", "RAGOPS_CACHE_DIR": "ragops", "XDG_CACHE_HOME": "xdg"}
    env = _shell_env() | {name: str(scratch / "cache" / folder) for name, folder in caches.items()}
    return measure("from-nothing", clone, env, log) | {"caches_emptied": sorted(caches)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(TARGET_SECONDS), help="measure one of the two (default: both)")
    parser.add_argument("--keep", action="store_true", help="keep the from-nothing clone (its path is printed)")
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["warm", "from-nothing"]
    commit = _git("-C", str(REPO_ROOT), "rev-parse", "HEAD")
    logs = Path(tempfile.mkdtemp(prefix="make-run-bench-logs-"))
    result: dict[str, Any] = {"benchmark": "make run", "utc": datetime.now(UTC).isoformat(timespec="seconds")}
    result["commit"] = commit
    if "warm" in kinds:
        result["warm"] = measure("warm", REPO_ROOT, _shell_env(), logs / "warm.log")
    if "from-nothing" in kinds:
        scratch = Path(tempfile.mkdtemp(prefix="make-run-bench-"))
        try:
            result["from_nothing"] = from_nothing(scratch, commit, logs / "from-nothing.log")
        finally:
            if args.keep:
                print(f"kept: {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    write_result("make-run", result)
    measured = [result[k] for k in ("warm", "from_nothing") if k in result]
    if any(m["exit_status"] for m in measured):
        return 2
    return 0 if all(m["within_target"] for m in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
