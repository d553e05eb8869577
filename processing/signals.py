"""SIGTERM and SIGINT stop a run the same way: as an exception in the main thread.

A stopped or time-limited SageMaker job gets SIGTERM, then SIGKILL after a grace period; a terminal's Ctrl-C
sends SIGINT. Either one raises `Interrupted` where the main thread is, so the `finally` blocks and context
managers that already handle Ctrl-C run for SIGTERM too: the stage and parent runs end KILLED with the signal
as their `ragops.error` tag, the local LLM server stops and its temp log is removed, a `--mode multi` run
passes SIGTERM on to its stage process. Python installs the handler itself, so it works as PID 1 as well,
where a signal without a handler is ignored (the image runs tini as PID 1 all the same). Only the first
signal raises: a second one while cleaning up is ignored, so the clean-up is not cut short.

Python cannot raise everywhere: a signal handled while a finalizer runs (a `weakref.finalize` callback, a
`__del__`) raises into code whose exceptions Python reports as "Exception ignored" and drops, and the run would
go on as if never signalled. `sys.unraisablehook` sees the dropped `Interrupted`; the signal is then raised
again from a one-shot SIGALRM timer, once the finalizer has returned, or when the block ends, if that is sooner.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

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


_REDELIVERY_DELAY_S = 0.01


class _Redelivery:
    """Brings back an `Interrupted` that Python dropped: an unraisable hook notes it and arms a one-shot SIGALRM
    timer, whose handler raises it once the finalizer has returned. What is still pending when the block ends is
    raised there. SIGALRM and its timer are touched only once something was dropped."""

    def __init__(self, previous_hook: Callable[[Any], object]) -> None:
        self.previous_hook = previous_hook
        self.pending: int | None = None  # the dropped signal, until it is raised again
        self.armed = False

    def hook(self, unraisable: Any) -> None:  # sys.UnraisableHookArgs, which typeshed does not export
        dropped = unraisable.exc_value
        stop = stop_behind(dropped) if dropped is not None else None
        if not isinstance(stop, Interrupted) or threading.current_thread() is not threading.main_thread():
            self.previous_hook(unraisable)
            return
        self.pending = stop.signum
        signal.signal(signal.SIGALRM, self._raise_pending)
        signal.setitimer(signal.ITIMER_REAL, _REDELIVERY_DELAY_S)
        self.armed = True

    def _raise_pending(self, _signum: int, _frame: FrameType | None) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)

    def disarm(self) -> None:
        if self.armed:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # an alarm already due must not raise mid-restore
            signal.setitimer(signal.ITIMER_REAL, 0)


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
    previous = {handled: signal.getsignal(handled) for handled in (*HANDLED, signal.SIGALRM)}
    redelivery = _Redelivery(sys.unraisablehook)
    for handled in HANDLED:
        signal.signal(handled, _interrupt)
    sys.unraisablehook = redelivery.hook
    try:
        yield
    finally:
        redelivery.disarm()
        sys.unraisablehook = redelivery.previous_hook
        for handled, handler in previous.items():
            if handled != signal.SIGALRM or redelivery.armed:
                signal.signal(handled, handler)
        if redelivery.pending is not None:  # dropped just before the block ended: the timer had no time to fire
            raise Interrupted(redelivery.pending)
