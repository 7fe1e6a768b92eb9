"""Loaded (through PYTHONPATH) only by the scheduler the chaos suite runs under Debian's faketime.

libfaketime 0.9.10 with its monotonic clock left alone (FAKETIME_DONT_FAKE_MONOTONIC=1, so that
only the wall clock is skewed) hands Python 3.11's time.sleep, which sleeps until an absolute
CLOCK_MONOTONIC deadline, a deadline it has shifted by the fake offset, and the kernel answers
EINVAL. A timed wait on an event sleeps on the same clock without that path, and is what this
process's time.sleep does instead.
"""

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds > 0:
        threading.Event().wait(seconds)


time.sleep = _sleep
