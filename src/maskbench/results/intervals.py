"""Confidence intervals for latencies and latency ratios: is a difference bigger than the noise?

A median from one run of a few dozen calls moves with the machine (frequency, a neighbour, heat),
so a ratio between two jobs is worth only its interval. Percentile bootstrap, numpy only, with
a fixed seed so the same records always give the same report:

- :func:`median_interval`: the 95 % interval of the median over a job's timed calls;
- :func:`ratio_interval`: the latency ratio A/B. *Paired* (both jobs timed call by call in the
  same rounds, :mod:`maskbench.benchmark.interleave`): the ratio of each pair of neighbouring
  calls, A's k-th over B's k-th, summarised by their 10 %-trimmed geometric mean, pairs
  resampled jointly, so a drift that slowed A's call slowed B's next to it and cancels. (Not
  the ratio of the two medians: under a neighbour that comes and goes the calls fall in two
  modes, and each median jumps between them with the share of loaded calls; measured, 1.08
  and 1.32 for the same comparison run twice, where the pair ratios gave 1.17 and 1.18.)
  *Unpaired* (timed in separate blocks): the ratio of the two medians, each side resampled on
  its own, and drift between the blocks stays in the interval;
- :func:`compare_records`: the ratio of two records, paired over their timed calls
  (``call_ms``, else the per-round means ``round_ms``) when the records say they were compared
  directly, else unpaired over the rounds.

A ratio interval that contains 1 means the two cannot be told apart: a tie within measurement.
With few rounds (the default ``--repeat 3``) the bootstrap has little to resample and the
intervals are coarse: use ``--repeat 10`` or more for a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import TIMING_INTERLEAVED, BenchmarkRecord

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
TRIM = 0.10  # share of pair ratios cut at each end before the geometric mean (transitions of a neighbour)
TIE = "tie within measurement"


@dataclass(frozen=True)
class Interval:
    """A point estimate and its ``CONFIDENCE`` interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def text(self, digits: int = 1) -> str:
        return f"{self.value:,.{digits}f} [{self.low:,.{digits}f}–{self.high:,.{digits}f}]"


@dataclass(frozen=True)
class Comparison:
    """A/B latency ratio of two records (below 1: A is faster)."""

    ratio: Interval
    paired: bool  # interleaved in the same rounds: drift cancels

    @property
    def tie(self) -> bool:
        """The interval contains 1: the records cannot be told apart."""
        return self.ratio.contains(1.0)

    def verdict(self, a: str, b: str) -> str:
        if self.tie:
            return TIE
        return f"{a} faster" if self.ratio.value < 1.0 else f"{b} faster"


def _bounds(estimates: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return float(low), float(high)


def median_interval(samples: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The median of ``samples`` and its percentile-bootstrap interval."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples for an interval")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    low, high = _bounds(np.median(values[picks], axis=1))
    return Interval(float(np.median(values)), low, high)


def trimmed_geometric_mean(ratios: np.ndarray, trim: float = TRIM) -> np.ndarray:
    """Along the last axis: the geometric mean of the ratios left after cutting ``trim`` of
    them at each end (a few pairs that straddled a change of load do not move it)."""
    logs = np.sort(np.log(ratios), axis=-1)
    cut = int(logs.shape[-1] * trim)
    return np.exp(logs[..., cut:logs.shape[-1] - cut].mean(axis=-1))


def ratio_interval(a: Sequence[float], b: Sequence[float], *, paired: bool, resamples: int = RESAMPLES,
                   seed: int = SEED) -> Interval:
    """A/B latency ratio and its interval. ``paired``: ``a[i]`` and ``b[i]`` were measured next
    to each other; the estimate is the trimmed geometric mean of ``a[i] / b[i]``, the pairs
    resampled jointly (needs equal lengths). Unpaired: median(a) / median(b), each resampled on
    its own."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.size == 0 or second.size == 0:
        raise ValueError("no samples for a ratio")
    rng = np.random.default_rng(seed)
    if paired:
        if first.size != second.size:
            raise ValueError(f"paired samples need equal lengths, got {first.size} and {second.size}")
        ratios = first / second
        picks = rng.integers(0, ratios.size, size=(resamples, ratios.size))
        low, high = _bounds(trimmed_geometric_mean(ratios[picks]))
        return Interval(float(trimmed_geometric_mean(ratios)), low, high)
    picks_a = rng.integers(0, first.size, size=(resamples, first.size))
    picks_b = rng.integers(0, second.size, size=(resamples, second.size))
    estimates = np.median(first[picks_a], axis=1) / np.median(second[picks_b], axis=1)
    low, high = _bounds(estimates)
    return Interval(float(np.median(first) / np.median(second)), low, high)


def compared_directly(a: BenchmarkRecord, b: BenchmarkRecord) -> bool:
    """Both were timed in the same interleaved group, in the same rounds."""
    return (a.timing == TIMING_INTERLEAVED == b.timing and a.interleave_group is not None
            and a.interleave_group == b.interleave_group and b.key in (a.compared_with or [])
            and a.key in (b.compared_with or []) and len(a.round_ms or []) == len(b.round_ms or []))


def record_median_interval(record: BenchmarkRecord) -> Interval | None:
    """The record's end-to-end median over its timed calls (``call_ms``); None for records
    written before they were kept, and a single call."""
    return median_interval(record.call_ms) if record.call_ms and len(record.call_ms) > 1 else None


def compare_records(a: BenchmarkRecord, b: BenchmarkRecord) -> Comparison | None:
    """A/B; None when either has fewer than two rounds (one round has nothing to resample: no
    interval). Compared directly: paired call by call (A's k-th call was followed by B's k-th,
    :mod:`maskbench.benchmark.control`), or round by round for records without equal
    ``call_ms``; otherwise unpaired over the per-round means."""
    if len(a.round_ms or []) < 2 or len(b.round_ms or []) < 2:
        return None
    paired = compared_directly(a, b)
    by_call = paired and len(a.call_ms or []) == len(b.call_ms or []) >= 2
    samples_a, samples_b = (a.call_ms, b.call_ms) if by_call else (a.round_ms, b.round_ms)
    return Comparison(ratio_interval(samples_a or [], samples_b or [], paired=paired), paired)
