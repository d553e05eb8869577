"""Progress of a long stage as log lines: a count at every tenth of the work and at the end, with the time so
far. Plain lines rather than a redrawn bar, so a terminal and a SageMaker job's log read the same."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

STEPS = 10


class Progress:
    """Thread-safe: `tick` may be called from the workers that do the items."""

    def __init__(self, logger: logging.Logger, what: str, total: int) -> None:
        self.logger, self.what, self.total = logger, what, total
        self.done = 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def tick(self) -> None:
        step = max(1, self.total // STEPS)
        with self.lock:  # counted and logged together, so the lines come in order
            self.done += 1
            if self.done == self.total or self.done % step == 0:
                elapsed = time.perf_counter() - self.started
                self.logger.info("  %d/%d %s (%.0f s)", self.done, self.total, self.what, elapsed)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is logged (a test or a tool may have replaced it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def log_to_console() -> None:
    """The pipeline's own log lines (stage progress, dropped documents) on stderr, without their logger's
    name; libraries keep their own logging settings, and the lines still propagate (to a test's log capture)."""
    logger = logging.getLogger("processing")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
