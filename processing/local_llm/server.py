"""A `llama-server` subprocess owned by the pipeline process: started on a free loopback port, health-checked
before use, and stopped on success, on failure and on Ctrl-C.

No orphan survives its owner: the child is in its own session (a terminal's Ctrl-C reaches only the pipeline,
which then stops the server in its `finally`), it gets SIGTERM from the kernel if its owner dies without
cleaning up (PR_SET_PDEATHSIG, Linux), and an atexit hook stops any server still running at interpreter exit.
The server answers only requests carrying a per-process API key, so other local users cannot use it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

BINARY_ENV = "RAGOPS_LLAMA_SERVER"
LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_LIVE: set[LlamaServer] = set()


class LocalServerError(RuntimeError):
    """The local LLM server binary is missing, or the server did not become ready."""


@dataclass(frozen=True)
class ServerSettings:
    """How the server runs. No prompt cache keeps memory flat (~250 MB with SmolLM2 and one slot): the default
    cache grew it to 3 GB over 120 questions. `slots` requests are decoded together (continuous batching);
    the server's context is `context_size` per slot, so concurrent answers keep the context a lone one has."""

    context_size: int = 4096
    threads: int = 0  # 0: every core
    slots: int = 1
    ready_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.context_size < 256 or self.threads < 0 or self.slots < 1 or self.ready_timeout_s <= 0:
            raise ValueError(f"invalid local server settings: {self}")


def find_binary() -> Path:
    """$RAGOPS_LLAMA_SERVER, else the one `make install` put beside this interpreter, else `llama-server` on PATH."""
    explicit = os.environ.get(BINARY_ENV)
    candidates = [Path(explicit)] if explicit else [Path(sys.prefix) / "bin" / "llama-server"]
    if not explicit and (on_path := shutil.which("llama-server")):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = f"${BINARY_ENV}={explicit}" if explicit else f"{candidates[0]} or PATH"
    raise LocalServerError(f"llama-server not found ({where}); `make install` builds it")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _load_prctl() -> Any:
    """prctl, looked up once here: dlopen in a forked child of a threaded process can deadlock."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> Callable[[], None]:
    def arm() -> None:  # runs in the child between fork and exec
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the owner died before the signal was armed
            os._exit(1)

    return arm


class LlamaServer:
    """`with LlamaServer(binary, model, alias) as server:` -> `server.base_url` (".../v1") and `server.api_key`.

    Start it from the thread that will outlive its use (the main thread): the kernel's parent-death signal
    follows the thread that started the child.
    """

    def __init__(self, binary: Path, model: Path, alias: str, settings: ServerSettings | None = None) -> None:
        self.binary, self.model, self.alias = binary, model, alias
        self.settings = settings or ServerSettings()
        self.api_key = secrets.token_urlsafe(24)
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalServerError("the local LLM server is not started")
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def command(self, port: int) -> list[str]:
        s = self.settings
        return [
            str(self.binary),
            *("--model", str(self.model), "--alias", self.alias, "--host", LOOPBACK, "--port", str(port)),
            *("--ctx-size", str(s.context_size * s.slots), "--parallel", str(s.slots), "--cache-ram", "0"),
            *(("--threads", str(s.threads)) if s.threads else ()),
            # --poll 0: worker threads sleep instead of spinning while waiting for work, so two servers (a test
            # run beside a bench) sharing cores do not starve each other into request timeouts.
            *("--poll", "0", "--offline", "--no-slots"),  # the log is stdout and stderr, captured in self._log
        ]

    def start(self) -> LlamaServer:
        """Start and wait until /health says the model is loaded; raises with the server's log tail otherwise."""
        if self._process is not None:
            return self
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")} | {"LLAMA_API_KEY": self.api_key}
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, arguments built above
            self.command(self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if _PRCTL is not None else None,
        )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        url = f"http://{LOOPBACK}:{self.port}/health"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalServerError(f"llama-server exited with status {self._process.returncode}: {self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise LocalServerError(f"llama-server not ready after {self.settings.ready_timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        text = (
            Path(self._log.name).read_text(encoding="utf-8", errors="replace") if Path(self._log.name).exists() else ""
        )
        return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate (then kill) the server and remove its log; safe to call more than once."""
        process, self._process = self._process, None
        _LIVE.discard(self)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._log.name)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()
