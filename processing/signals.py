"""SIGTERM and SIGINT stop a run the same way: as an exception in the main thread.

A stopped or time-limited SageMaker job gets SIGTERM, then SIGKILL after a grace period; a terminal's Ctrl-C
sends SIGINT. Either one raises `Interrupted` where the main thread is, so the `finally` blocks and context
managers that already handle Ctrl-C run for SIGTERM too: the stage and parent runs end KILLED with the signal
as their `ragops.error` tag, the local LLM server stops and its temp log is removed, a `--mode multi` run
passes SIGTERM on to its stage process. Python installs the handler itself, so it works as PID 1 as well,
where a signal without a handler is ignored (the image runs tini as PID 1 all the same). Only the first
signal raises: a second one while cleaning up is ignored, so the clean-up is not cut short.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by `signum`."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def _already_stopping(signum: int, _: FrameType | None) -> None:
    print(f"{signal.Signals(signum).name} ignored: already stopping", file=sys.stderr)


def _interrupt(signum: int, _: FrameType | None) -> None:
    for handled in HANDLED:
        signal.signal(handled, _already_stopping)
    raise Interrupted(signum)


def stop_behind(error: BaseException) -> BaseException:
    """The interrupt (`Interrupted`, Ctrl-C) that `error` stands for, else `error` itself. A signal's exception is
    raised wherever the main thread is, so it can surface wrapped: raised while a class body's descriptors are set
    up (an import in progress), Python 3.11 reports a RuntimeError "Error calling __set_name__" caused by it."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return error


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGINT raises `Interrupted`; the previous handlers come back after
    it. Signal handlers belong to the main thread, so elsewhere (a caller's worker thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {handled: signal.getsignal(handled) for handled in HANDLED}
    for handled in HANDLED:
        signal.signal(handled, _interrupt)
    try:
        yield
    finally:
        for handled, handler in previous.items():
            signal.signal(handled, handler)
