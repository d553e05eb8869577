"""A signal handled while a finalizer runs raises into code whose exceptions Python drops; the run must still stop,
and without the dropped exception's traceback on the console."""

from __future__ import annotations

import os
import signal
import sys
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from processing.signals import Interrupted, stop_on_signals

BOUND_S = 5.0


class _Resource:
    """Anything with a finalizer, as MLflow's and the HTTP clients' objects have."""


def _takes_the_signal() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the finalizer's next instruction
    time.sleep(0.01)


def _wraps_the_signal() -> None:
    """A finalizer that turns the interrupt into its own error, as Python does in a descriptor's __set_name__."""
    try:
        _takes_the_signal()
    except Interrupted as stop:
        raise RuntimeError("closing failed") from stop


def _signal_inside_a_finalizer(finalizer: Callable[[], None]) -> None:
    resource = _Resource()
    weakref.finalize(resource, finalizer)
    del resource  # CPython finalizes on releasing the last reference, at once (no collection, which takes time)


def _work_signalled_in_a_finalizer(finalizer: Callable[[], None]) -> None:
    """A run's work: a finalizer takes the signal, then the work goes on, where the signal must reach it."""
    with stop_on_signals():
        _signal_inside_a_finalizer(finalizer)
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.mark.parametrize("finalizer", [_takes_the_signal, _wraps_the_signal], ids=["raised", "wrapped"])
def test_a_signal_dropped_inside_a_finalizer_is_raised_again(
    capfd: pytest.CaptureFixture[str], finalizer: Callable[[], None]
) -> None:
    with pytest.raises(Interrupted) as raised:
        _work_signalled_in_a_finalizer(finalizer)
    assert raised.value.signum == signal.SIGTERM
    assert "Exception ignored" not in capfd.readouterr().err


def _block_ending_right_after_the_drop() -> None:
    with stop_on_signals():
        _signal_inside_a_finalizer(_takes_the_signal)


def test_a_signal_dropped_just_before_the_block_ends_is_raised_as_it_ends() -> None:
    with pytest.raises(Interrupted) as raised:
        _block_ending_right_after_the_drop()
    assert raised.value.signum == signal.SIGTERM
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the redelivery timer does not outlive the block


def _state() -> tuple[object, ...]:
    return (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM),
            sys.unraisablehook)  # fmt: skip


@pytest.fixture
def outer_alarm() -> Iterator[None]:
    """A caller's own alarm, pending across the block (ignored if it ever fires)."""
    previous = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 60)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("outer_alarm")
def test_leaving_the_block_gives_back_the_handlers_the_hook_and_the_callers_alarm() -> None:
    before = _state()
    with stop_on_signals():
        pass
    assert _state() == before
    assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
