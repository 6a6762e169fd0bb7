"""The one clock (maskbench.utils.timing), on a stand-in perf_counter so the numbers are exact."""

from __future__ import annotations

import itertools

from maskbench.utils import timing


def _clock(monkeypatch, ticks):
    monkeypatch.setattr(timing.time, "perf_counter", iter(ticks).__next__)


def test_laps_are_the_spans_between_reads_and_add_up_to_elapsed(monkeypatch):
    _clock(monkeypatch, [10.0, 10.5, 12.0, 12.25])
    clock = timing.Stopwatch()
    assert [clock.lap(), clock.lap(), clock.lap()] == [0.5, 1.5, 0.25]
    assert clock.elapsed() == 2.25


def test_best_of_keeps_the_fastest_call_and_the_last_result(monkeypatch):
    _clock(monkeypatch, [0.0, 3.0, 10.0, 11.0, 20.0, 22.0])
    counter = itertools.count()
    assert timing.best_of(lambda: next(counter), 3) == (1.0, 2)


def test_best_of_runs_at_least_once():
    calls = []
    seconds, result = timing.best_of(lambda: calls.append(1) or "done", 0)
    assert calls == [1] and result == "done" and seconds >= 0.0
