"""Progress lines of a long stage: one per tenth of the work and one at the end, also when workers tick."""

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from processing.progress import Progress


def test_progress_is_logged_at_each_tenth_and_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress(logging.getLogger("processing.test"), "questions answered", 33)
    with caplog.at_level(logging.INFO, logger="processing"), ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: progress.tick(), range(33)))
    counts = [message.split()[0] for message in caplog.messages]
    assert counts == [f"{n}/33" for n in (3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33)]
    assert caplog.messages[-1].startswith("  33/33 questions answered (")
