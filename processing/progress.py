"""Progress of a long stage as log lines: a count at every tenth of the work and at the end, with the time so
far. Plain lines rather than a redrawn bar, so a terminal and a SageMaker job's log read the same."""

from __future__ import annotations

import logging
import threading
import time

STEPS = 10


class Progress:
    """Thread-safe: `tick` may be called from the workers that do the items."""

    def __init__(self, logger: logging.Logger, what: str, total: int) -> None:
        self.logger, self.what, self.total = logger, what, total
        self.done = 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        step = max(1, self.total // STEPS)
        if done == self.total or done % step == 0:
            self.logger.info("  %d/%d %s (%.0f s)", done, self.total, self.what, time.perf_counter() - self.started)
