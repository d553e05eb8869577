"""A signal's exception can surface wrapped by Python; the run still ends as stopped by that signal."""

from __future__ import annotations

import signal

import pytest

from processing.signals import Interrupted, stop_behind
from processing.tracking import end_status, error_text


def _class_whose_set_up_is_interrupted() -> None:
    """What SIGTERM during an import did: the handler raised while a descriptor's __set_name__ ran."""

    class Descriptor:
        def __set_name__(self, owner: type, name: str) -> None:
            raise Interrupted(signal.SIGTERM)

    type("Cubature", (), {"nodes_and_weights": Descriptor()})


def test_a_signal_raised_inside_set_name_is_still_the_signal() -> None:
    with pytest.raises(RuntimeError, match="__set_name__") as raised:  # Python 3.11 (the pinned one) wraps it
        _class_whose_set_up_is_interrupted()
    stop = stop_behind(raised.value)
    assert isinstance(stop, Interrupted)
    assert stop.signum == signal.SIGTERM
    assert end_status(raised.value) == "KILLED"
    assert error_text(raised.value) == "Interrupted: stopped by SIGTERM"


def test_an_error_with_no_signal_behind_it_stays_itself() -> None:
    error = RuntimeError("stage failed")
    error.__cause__ = OSError("disk full")
    assert stop_behind(error) is error
    assert end_status(error) == "FAILED"
