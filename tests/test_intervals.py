"""The interval arithmetic (maskbench.results.intervals) on synthetic series, and on records."""

import numpy as np
import pytest

from maskbench.results.intervals import compare_records, compared_directly, median_interval, ratio_interval
from maskbench.results.records import BenchmarkRecord


def _drifting(base, rounds=12, seed=1):
    """Per-round latencies of a job on a machine whose speed drifts by up to +-30 % round to round
    (the same drift for every job timed in the same round), plus 1 % noise of its own."""
    drift = 1.0 + 0.3 * np.sin(np.arange(rounds) * 1.7)
    noise = 1.0 + 0.01 * np.random.default_rng(seed).standard_normal(rounds)
    return list(base * drift * noise)


def test_paired_rounds_cancel_a_shared_drift():
    a, b = _drifting(105.0, seed=1), _drifting(100.0, seed=2)  # A is 5 % slower
    paired = ratio_interval(a, b, paired=True)
    unpaired = ratio_interval(a, b, paired=False)
    assert paired.low > 1.0 and paired.contains(1.05)  # told apart, and the true ratio is inside
    assert unpaired.contains(1.0)  # block-like: the drift swamps 5 %
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 3


def test_identical_series_are_a_tie_and_intervals_are_deterministic():
    a = _drifting(100.0)
    interval = ratio_interval(a, list(a), paired=True)
    assert interval.value == 1.0 and interval.contains(1.0)
    assert ratio_interval(a, a[::-1], paired=False) == ratio_interval(a, a[::-1], paired=False)


def test_the_median_interval_holds_the_median():
    samples = list(np.random.default_rng(3).normal(200.0, 5.0, size=60))
    interval = median_interval(samples)
    assert interval.low <= np.median(samples) <= interval.high
    assert interval.high - interval.low < 10.0
    assert median_interval([5.0, 5.0, 5.0]).text() == "5.0 [5.0–5.0]"
    with pytest.raises(ValueError, match="no samples"):
        median_interval([])
    with pytest.raises(ValueError, match="equal lengths"):
        ratio_interval([1.0, 2.0], [1.0], paired=True)


def _record(key, round_ms, group="g1", others=()):
    return BenchmarkRecord(key=key, job={}, status="ok", timing="interleaved", interleave_group=group,
                           compared_with=list(others), round_ms=round_ms)


def test_records_are_paired_only_when_compared_directly():
    a = _record("A", _drifting(105.0, seed=1), others=["B"])
    b = _record("B", _drifting(100.0, seed=2), others=["A"])
    comparison = compare_records(a, b)
    assert compared_directly(a, b) and comparison.paired and not comparison.tie
    assert comparison.verdict("A", "B") == "B faster"
    other_run = _record("B", b.round_ms, group="g2", others=["A"])
    assert not compared_directly(a, other_run) and compare_records(a, other_run).tie
    assert compare_records(a, _record("C", [100.0])) is None  # one round: no interval
    assert compare_records(a, a).verdict("A", "A") == "tie within measurement"


def _neighbour_run(loaded_pairs, pairs=30, seed=0):
    """Call-by-call pairs beside a neighbour that comes and goes: quiet calls A 3.4 s, B 3.0 s;
    loaded ones A 6.7 s, B 5.5 s (the two modes measured with tools/neighbour.py), the first
    ``loaded_pairs`` pairs loaded, 1 % noise of each call's own."""
    noise = 1.0 + 0.01 * np.random.default_rng(seed).standard_normal((2, pairs))
    loaded = np.arange(pairs) < loaded_pairs
    a = np.where(loaded, 6.7, 3.4) * noise[0]
    b = np.where(loaded, 5.5, 3.0) * noise[1]
    return list(a), list(b)


def test_paired_pair_ratios_do_not_jump_with_the_share_of_loaded_calls():
    (a1, b1), (a2, b2) = _neighbour_run(14, seed=1), _neighbour_run(16, seed=2)
    first, second = ratio_interval(a1, b1, paired=True), ratio_interval(a2, b2, paired=True)
    assert abs(first.value / second.value - 1.0) < 0.02
    assert 1.13 < first.value < 1.22 and 1.13 < second.value < 1.22  # between the two modes' ratios
    # the ratio of medians jumps from one mode's ratio to the other's: why pairs are not judged by it
    medians = [np.median(a) / np.median(b) for a, b in ((a1, b1), (a2, b2))]
    assert abs(medians[0] / medians[1] - 1.0) > 0.05
