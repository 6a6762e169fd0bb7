"""One clock for every measured call: the benchmark's per-frame split and the conversion check's
best-of-N both read ``time.perf_counter`` (monotonic, the finest clock Python has) through here,
so what "a second" means cannot drift between the two. A leaf: it imports no maskbench module,
so verify/ and benchmark/ may both use it without importing each other."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Stopwatch:
    """Started when made; ``lap()`` gives the seconds since the previous lap (or the start),
    ``elapsed()`` the seconds from the start to the last lap (what the laps add up to)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return seconds

    def elapsed(self) -> float:
        return self.last - self.start


def best_of(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The fastest of ``repeats`` calls (at least one) in seconds, and the last call's result."""
    clock = Stopwatch()
    result = run()
    best = clock.lap()
    for _ in range(repeats - 1):
        clock = Stopwatch()
        result = run()
        best = min(best, clock.lap())
    return best, result
