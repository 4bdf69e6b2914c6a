"""A loaded machine for the timing benchmarks: busy-looping processes that keep cores busy for
the length of a ``with`` block, and the load average to print next to every figure."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_processes(count: int, settle_seconds: float = 1.0) -> Iterator[None]:
    """``count`` processes each spinning on one core until the block ends (also on an error)."""
    hogs = [mp.Process(target=_spin, daemon=True) for _ in range(count)]
    for hog in hogs:
        hog.start()
    if hogs:
        time.sleep(settle_seconds)   # let them show in the kernel's run queue and load average
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as printed next to a timing."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
