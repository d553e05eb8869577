"""Which llama-server processes exist, read from /proc (Linux), so tests can prove none is left behind."""

from __future__ import annotations

import time
from collections.abc import Callable
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
    wait_for(lambda: not pids & llama_servers(), timeout_s, interval_s=0.1)
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


def descendants(root: int) -> set[int]:
    """Every live process below `root` (children, grandchildren, ...), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if "zombie" not in fields.get("State", ""):
            parents[int(entry.name)] = int(fields["PPid"])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


def alive(pids: set[int]) -> set[int]:
    """Which of `pids` still run (zombies, ended but not yet reaped, do not count)."""
    running = set()
    for pid in pids:
        try:
            state = next(
                line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:")
            )
        except (OSError, StopIteration):
            continue
        if "zombie" not in state:
            running.add(pid)
    return running
