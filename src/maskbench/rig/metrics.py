"""What happened to every frame (:class:`FrameEvent`) and the figures a replay reports from them:
per camera and overall (counts, latency percentiles, deadline misses, rate), per window of a
sustained run, and the drift between the first and the last window.

Latency runs from a frame's arrival (its offer time on the replay clock) to its detections, so
queueing, decoding, preprocessing, inference and postprocessing all count. A frame that gets no
detections in time is a miss: dropped, undecodable, left unfinished, or later than the deadline."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

STAGES = ("decode", "preprocess", "infer", "postprocess")


class Outcome(str, Enum):
    PROCESSED = "processed"
    DROPPED = "dropped"  # overtaken in a `latest` queue
    DECODE_FAILED = "decode_failed"
    UNFINISHED = "unfinished"  # still queued when the run ended


@dataclass(frozen=True)
class FrameEvent:
    camera: str
    index: int
    offered_at: float
    outcome: Outcome
    done_at: float
    stages_s: tuple[float, ...] = ()  # seconds per STAGES entry (processed frames)
    error: str | None = None

    @property
    def latency_s(self) -> float:
        return self.done_at - self.offered_at


class Recorder:
    """Collects events from every worker thread; keeps the first fatal error (a model step that
    raised), which ends the run."""

    def __init__(self) -> None:
        self.events: list[FrameEvent] = []
        self._lock = threading.Lock()
        self.fatal: BaseException | None = None

    def add(self, event: FrameEvent) -> None:
        with self._lock:
            self.events.append(event)

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal = error

    def snapshot(self) -> list[FrameEvent]:
        with self._lock:
            return list(self.events)


@dataclass(frozen=True)
class LatencyFigures:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencyFigures | None:
        if not seconds:
            return None
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(round(float(p50), 3), round(float(p90), 3), round(float(p99), 3), round(float(ms.max()), 3),
                   round(float(ms.mean()), 3))


@dataclass(frozen=True)
class CameraFigures:
    """One camera's figures, or all cameras' (``camera == "all"``)."""

    camera: str
    offered: int
    processed: int
    dropped: int
    decode_failed: int
    unfinished: int
    offered_hz: float
    processed_hz: float  # the achieved rate
    latency: LatencyFigures | None
    misses: int | None  # None without a deadline
    miss_share: float | None
    max_queue_depth: int
    stages_ms: dict[str, float] = field(default_factory=dict)  # median per stage
    first_decode_error: str | None = None


def camera_figures(camera: str, events: Sequence[FrameEvent], seconds: float, deadline_ms: float | None,
                   max_queue_depth: int) -> CameraFigures:
    count = {outcome: 0 for outcome in Outcome}
    for event in events:
        count[event.outcome] += 1
    done = [e for e in events if e.outcome is Outcome.PROCESSED]
    misses = share = None
    if deadline_ms is not None:
        late = sum(1 for e in done if e.latency_s * 1000.0 > deadline_ms)
        misses = late + len(events) - len(done)
        share = round(misses / len(events), 4) if events else 0.0
    stages = {}
    if done and done[0].stages_s:
        table = np.asarray([e.stages_s for e in done], dtype=np.float64) * 1000.0
        stages = {name: round(float(v), 3) for name, v in zip(STAGES, np.median(table, axis=0))}
    errors = [e.error for e in events if e.outcome is Outcome.DECODE_FAILED and e.error]
    per_s = 1.0 / seconds if seconds > 0 else 0.0
    return CameraFigures(camera, len(events), len(done), count[Outcome.DROPPED], count[Outcome.DECODE_FAILED],
                         count[Outcome.UNFINISHED], round(len(events) * per_s, 3), round(len(done) * per_s, 3),
                         LatencyFigures.of([e.latency_s for e in done]), misses, share, max_queue_depth, stages,
                         errors[0] if errors else None)


@dataclass(frozen=True)
class Sample:
    """The machine at one instant of the run (window boundaries)."""

    at: float  # replay clock
    cpu_s: float  # process CPU time
    cpu_mhz: float | None
    temperatures_c: dict[str, float]


@dataclass(frozen=True)
class WindowFigures:
    index: int
    start_s: float  # from the start of the replay
    seconds: float
    processed: int
    processed_hz: float
    p99_ms: float | None
    cpu_s_per_frame: float | None
    cpu_mhz: float | None  # at the window's end
    temperatures_c: dict[str, float]


def window_figures(events: Sequence[FrameEvent], samples: Sequence[Sample], t0: float) -> list[WindowFigures]:
    """One window between each pair of successive samples; a frame belongs to the window in
    which its detections came out."""
    windows = []
    for k, (a, b) in enumerate(zip(samples, samples[1:])):
        done = [e for e in events if e.outcome is Outcome.PROCESSED and a.at <= e.done_at < b.at]
        seconds = b.at - a.at
        p99 = float(np.percentile([e.latency_s * 1000.0 for e in done], 99)) if done else None
        windows.append(WindowFigures(k, round(a.at - t0, 3), round(seconds, 3), len(done),
                                     round(len(done) / seconds, 3) if seconds > 0 else 0.0,
                                     round(p99, 3) if p99 is not None else None,
                                     round((b.cpu_s - a.cpu_s) / len(done), 5) if done else None,
                                     b.cpu_mhz, b.temperatures_c))
    return windows


@dataclass(frozen=True)
class Drift:
    """The last window against the first, as relative changes (0.05: 5 % higher)."""

    first: int
    last: int
    processed_hz_change: float | None
    p99_change: float | None
    cpu_mhz_change: float | None


def _change(first: float | None, last: float | None) -> float | None:
    if first is None or last is None or first == 0:
        return None
    return round(last / first - 1.0, 4)


def drift(windows: Sequence[WindowFigures]) -> Drift | None:
    if len(windows) < 2:
        return None
    a, b = windows[0], windows[-1]
    return Drift(a.index, b.index, _change(a.processed_hz, b.processed_hz), _change(a.p99_ms, b.p99_ms),
                 _change(a.cpu_mhz, b.cpu_mhz))


@dataclass(frozen=True)
class StabilityRule:
    """perf_analyzer's rule: the last ``windows`` windows' rates (and p99 latencies) each lie
    within ``tolerance`` of their mean."""

    windows: int = 3
    tolerance: float = 0.10
    latency: bool = True

    def holds(self, figures: Sequence[WindowFigures]) -> bool:
        if len(figures) < self.windows:
            return False
        last = figures[-self.windows:]
        series = [[w.processed_hz for w in last]]
        if self.latency:
            p99 = [w.p99_ms for w in last]
            if any(v is None for v in p99):
                return False
            series.append([float(v) for v in p99 if v is not None])
        for values in series:
            mean = sum(values) / len(values)
            if mean <= 0 or any(abs(v - mean) > self.tolerance * mean for v in values):
                return False
        return True
