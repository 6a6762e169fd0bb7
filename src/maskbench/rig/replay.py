"""Open-loop replay: frames are offered at their recorded (relative) times on a monotonic clock,
whether or not the model keeps up, into per-camera queues that an executor drains. The outcome is
a :class:`RigResult` (frozen, JSON-ready): per camera and overall figures, per-window figures of a
sustained run and their drift, CPU seconds per processed frame, peak RSS and energy where the
machine has counters.

After the last offer the executor gets ``drain_s`` to finish what is queued; frames still queued
then are counted as unfinished (misses), never silently lost."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..utils.errors import MaskbenchError, one_line
from .clock import Clock, MonotonicClock
from .energy import EnergyMeters, EnergyReport
from .executors import Executor
from .metrics import (
    CameraFigures,
    Drift,
    FrameEvent,
    Outcome,
    Recorder,
    Sample,
    StabilityRule,
    WindowFigures,
    camera_figures,
    drift,
    window_figures,
)
from .pipeline import Frame
from .queues import CameraQueues, Offer, QueuePolicy
from .sensors import cpu_mhz, temperatures_c

SCHEMA_VERSION = 1
SAMPLE_TICK_S = 0.1  # how often energy meters that integrate power are read


class RigError(MaskbenchError):
    """A replay that cannot run (no frames) or whose model step failed: one line."""


@dataclass(frozen=True)
class ReplayOptions:
    duration_s: float  # offer frames whose relative stamp is below this
    queue: QueuePolicy = QueuePolicy.LATEST
    deadline_ms: float | None = None
    window_s: float = 1.0
    drain_s: float | None = None  # None: the deadline (or one second without one)
    stop_when_stable: StabilityRule | None = None  # end early once the windows agree (capacity trials)
    min_duration_s: float = 0.0  # never end early before this
    sensors_root: Path = Path("/")


@dataclass(frozen=True)
class RigResult:
    executor: str
    queue: str
    deadline_ms: float | None
    seconds: float  # from the first offer to the last
    cameras: tuple[CameraFigures, ...]
    overall: CameraFigures
    windows: tuple[WindowFigures, ...]
    drift: Drift | None
    stable: bool | None  # None unless a stability rule was asked for
    cpu_s: float
    cpu_s_per_frame: float | None
    peak_rss_mb: float
    peak_rss_of_replay: bool  # False: the process's lifetime peak (the mark could not be reset)
    max_offer_lag_ms: float  # how late the replay itself offered a frame (a busy machine)
    energy: EnergyReport
    energy_j_per_frame: dict[str, float] = field(default_factory=dict)  # reading label -> J per processed frame
    kind: str = "rig"
    schema: int = SCHEMA_VERSION

    @property
    def miss_share(self) -> float | None:
        return self.overall.miss_share

    def holds(self, max_miss: float) -> bool:
        """Deadline held: misses at most ``max_miss`` of the offered frames (needs a deadline)."""
        return self.overall.miss_share is not None and self.overall.offered > 0 and \
            self.overall.miss_share <= max_miss

    def to_dict(self) -> dict:
        def plain(value):
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux 4.0+), so the peak is
    the replay's, not that of a model export earlier in the process; False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The peak resident set: ``VmHWM`` (since :func:`reset_peak_rss`), else the process's
    lifetime peak (``ru_maxrss``, kilobytes on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


class _Sampler(threading.Thread):
    """Window boundaries (CPU time, clock, temperatures) and energy meter readings; decides when
    a run may end early because its windows agree."""

    def __init__(self, clock: Clock, t0: float, options: ReplayOptions, recorder: Recorder, meters: EnergyMeters):
        super().__init__(name="rig-sampler", daemon=True)
        self.clock, self.t0, self.options, self.recorder, self.meters = clock, t0, options, recorder, meters
        self.samples: list[Sample] = [self.sample()]
        self.halt = threading.Event()
        self.stable = threading.Event()

    def sample(self) -> Sample:
        root = self.options.sensors_root
        return Sample(self.clock.now(), time.process_time(), cpu_mhz(root), temperatures_c(root))

    def run(self) -> None:
        next_window = self.t0 + self.options.window_s
        while not self.halt.wait(max(0.0, min(SAMPLE_TICK_S, next_window - self.clock.now()))):
            self.meters.sample()
            if self.clock.now() < next_window:
                continue
            self.samples.append(self.sample())
            next_window += self.options.window_s
            rule = self.options.stop_when_stable
            if rule is not None and self.clock.now() - self.t0 >= self.options.min_duration_s:
                windows = window_figures(self.recorder.snapshot(), self.samples, self.t0)
                if rule.holds(windows):
                    self.stable.set()
                    return


def replay(frames: Iterable[Frame], executor: Executor, options: ReplayOptions, *,
           cameras: Sequence[str] | None = None, clock: Clock | None = None,
           meters: EnergyMeters | None = None, warm_up: bool = True) -> RigResult:
    """Replay ``frames`` (all cameras merged in stamp order) through ``executor``."""
    clock = clock or MonotonicClock()
    meters = meters or EnergyMeters.discover(options.sensors_root)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise RigError("the source gave no frames; check the bag's topics or the folder")
    if warm_up:
        try:
            executor.warm_up(first.decode())
        except MaskbenchError:
            raise
        except Exception as err:  # noqa: BLE001 - a first frame or model that fails: one line before timing
            raise RigError(f"{first.source}: warm-up on the first frame failed: {one_line(err)}") from None
    rss_reset = reset_peak_rss()
    recorder = Recorder()
    queues = CameraQueues(list(cameras or []), options.queue, on_drop=lambda offer: recorder.add(
        FrameEvent(offer.frame.camera, offer.frame.index, offer.offered_at, Outcome.DROPPED, clock.now())))
    worker = threading.Thread(target=executor.run, args=(queues, recorder, clock), name="rig-executor", daemon=True)
    worker.start()
    meters.start()
    t0 = clock.now()
    sampler = _Sampler(clock, t0, options, recorder, meters)
    sampler.start()
    lag = 0.0
    stamp0 = first.stamp_ns
    frame: Frame | None = first
    while frame is not None:
        at = (frame.stamp_ns - stamp0) / 1e9
        if at >= options.duration_s:
            clock.sleep_until(t0 + options.duration_s)  # the source runs on: the run lasts its duration
            break
        if sampler.stable.is_set() or recorder.fatal is not None:
            break
        clock.sleep_until(t0 + at)
        now = clock.now()
        lag = max(lag, now - (t0 + at))
        queues.offer(Offer(frame, now))
        frame = next(iterator, None)
    t_end = clock.now()
    sampler.halt.set()
    sampler.join()
    if t_end - sampler.samples[-1].at >= 0.9 * options.window_s:  # the last whole window (its boundary raced)
        sampler.samples.append(sampler.sample())
    queues.close()
    drain = options.drain_s if options.drain_s is not None else (
        options.deadline_ms / 1000.0 if options.deadline_ms is not None else 1.0)
    worker.join(timeout=drain)
    for offer in queues.discard():
        recorder.add(FrameEvent(offer.frame.camera, offer.frame.index, offer.offered_at, Outcome.UNFINISHED,
                                clock.now()))
    worker.join()
    cpu_s = time.process_time() - sampler.samples[0].cpu_s
    energy = meters.stop()
    if recorder.fatal is not None:
        raise RigError(f"the model failed during the replay ({executor.name}): {one_line(recorder.fatal)}")
    return summarise(recorder.snapshot(), queues.max_depth, sampler.samples, executor.name, options,
                     t0, t_end, cpu_s, lag, energy,
                     sampler.stable.is_set() if options.stop_when_stable is not None else None, rss_reset)


def summarise(events: list[FrameEvent], max_depth: dict[str, int], samples: list[Sample], name: str,
              options: ReplayOptions, t0: float, t_end: float, cpu_s: float, lag: float, energy: EnergyReport,
              stable: bool | None, rss_reset: bool = False) -> RigResult:
    seconds = max(t_end - t0, 1e-9)
    names = sorted({e.camera for e in events} | set(max_depth))
    per_camera = tuple(camera_figures(c, [e for e in events if e.camera == c], seconds, options.deadline_ms,
                                      max_depth.get(c, 0)) for c in names)
    overall = camera_figures("all", events, seconds, options.deadline_ms, max(max_depth.values(), default=0))
    windows = tuple(window_figures(events, samples, t0))
    processed = overall.processed
    per_frame = {r.label: round(r.joules / processed, 4) for r in energy.readings} if processed else {}
    return RigResult(name, QueuePolicy(options.queue).value, options.deadline_ms, round(seconds, 3), per_camera,
                     overall, windows, drift(windows), stable, round(cpu_s, 3),
                     round(cpu_s / processed, 5) if processed else None, peak_rss_mb(), rss_reset,
                     round(float(np.float64(lag) * 1000.0), 3), energy, per_frame)
