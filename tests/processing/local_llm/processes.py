"""Which llama-server processes exist, read from /proc (Linux), so tests can prove none is left behind."""

from __future__ import annotations

import time
from pathlib import Path


def llama_servers() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if argv and argv[0].endswith(b"llama-server") and "zombie" not in state:
            pids.add(int(entry.name))
    return pids


def wait_until_gone(pids: set[int], timeout_s: float = 15.0) -> set[int]:
    """The pids still running after the timeout (empty when all ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        remaining = pids & llama_servers()
        if not remaining:
            return set()
        time.sleep(0.1)
    return pids & llama_servers()


def children_of(parent: int) -> set[int]:
    found = set()
    for pid in llama_servers():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
        if ppid == parent:
            found.add(pid)
    return found
