"""A signal handled while a finalizer runs raises into code whose exceptions Python drops; the run must still stop,
and without the dropped exception's traceback on the console."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import weakref

import pytest

from processing.signals import Interrupted, stop_on_signals

BOUND_S = 5.0


class _Resource:
    """Anything with a finalizer, as MLflow's and the HTTP clients' objects have."""


def _signal_inside_a_finalizer() -> None:
    def finalizer() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the finalizer's next instruction
        time.sleep(0.01)

    resource = _Resource()
    weakref.finalize(resource, finalizer)
    del resource
    gc.collect()


def _work_signalled_in_a_finalizer() -> None:
    """A run's work: a finalizer takes the signal, then the work goes on, where the signal must reach it."""
    with stop_on_signals():
        _signal_inside_a_finalizer()
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            time.sleep(0.01)


def test_a_signal_dropped_inside_a_finalizer_is_raised_again(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Interrupted) as raised:
        _work_signalled_in_a_finalizer()
    assert raised.value.signum == signal.SIGTERM
    assert "Exception ignored" not in capfd.readouterr().err


def test_leaving_the_block_gives_back_the_handlers_and_the_unraisable_hook() -> None:
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM), sys.unraisablehook)
    with stop_on_signals():
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM), sys.unraisablehook) == before
