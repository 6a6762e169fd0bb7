"""The largest load that holds the deadline: cameras at a rate, or the rate of a set of cameras.

A search over whole steps of load (one camera, or ``step`` Hz): double until a trial fails, bisect
between the last load that held and the first that failed, then confirm the answer with repeated
trials, stepping down while a repeat fails (MLPerf's original MultiStream searched this way). Each
trial is one replay long enough that its successive windows agree within 10 % (perf_analyzer's
stability rule); an unstable trial does not count as holding. The trial is a function, so tests
drive the search with arithmetic and the command with real replays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum

from .replay import RigResult


class LoadUnit(str, Enum):
    CAMERAS = "cameras"
    FPS = "fps"


@dataclass(frozen=True)
class Trial:
    load: float
    holds: bool
    miss_share: float | None = None
    p99_ms: float | None = None
    stable: bool | None = None
    seconds: float = 0.0
    processed_hz: float | None = None
    cpu_s_per_frame: float | None = None
    energy_j_per_frame: dict[str, float] = field(default_factory=dict)
    p50_ms: float | None = None  # for the latency-versus-offered-load plot (records, report)
    offered_hz: float | None = None  # frames/s offered, all cameras together

    @classmethod
    def of(cls, load: float, result: RigResult, max_miss: float) -> Trial:
        """A replay's verdict: the deadline held for at most ``max_miss`` of the frames, and (when
        a stability rule was asked for) its windows agreed."""
        holds = result.holds(max_miss) and result.stable is not False
        latency = result.overall.latency
        return cls(load, holds, result.miss_share, latency.p99_ms if latency else None, result.stable, result.seconds,
                   result.overall.processed_hz, result.cpu_s_per_frame, dict(result.energy_j_per_frame),
                   latency.p50_ms if latency else None, result.overall.offered_hz)


@dataclass(frozen=True)
class CapacityResult:
    unit: str
    capacity: float  # 0: not even the smallest load held
    confirmed: bool  # held on every repeat (False only when nothing held)
    at_limit: bool  # the search stopped at its upper limit: the capacity may be higher
    trials: tuple[Trial, ...]

    def at_capacity(self) -> Trial | None:
        """The last trial at the capacity (the figures a capacity table shows)."""
        return next((t for t in reversed(self.trials) if t.load == self.capacity), None)

    def to_dict(self) -> dict:
        return asdict(self)


def find_capacity(trial: Callable[[float], Trial], *, unit: LoadUnit = LoadUnit.CAMERAS, step: float = 1.0,
                  limit: float = 64.0, repeats: int = 2) -> CapacityResult:
    """``trial(load)`` for loads ``k * step`` (k = 1, 2, 4... then bisection); the answer held
    ``repeats`` times in all (the search's own trial included)."""
    trials: list[Trial] = []
    passed: dict[int, bool] = {}  # every trial at k held
    runs: dict[int, int] = {}

    def held(k: int) -> bool:
        result = trial(round(k * step, 6))
        trials.append(result)
        passed[k] = passed.get(k, True) and result.holds
        runs[k] = runs.get(k, 0) + 1
        return result.holds

    top = max(1, int(limit / step + 1e-9))
    lo, hi, k = 0, None, 1
    while hi is None:  # doubling
        if held(k):
            lo = k
            if k == top:
                break
            k = min(2 * k, top)
        else:
            hi = k
    while hi is not None and hi - lo > 1:  # bisection
        mid = (lo + hi) // 2
        if held(mid):
            lo = mid
        else:
            hi = mid
    while lo > 0:  # confirmation: `repeats` trials at the answer, stepping down while one fails
        while passed.get(lo, True) and runs.get(lo, 0) < repeats:
            held(lo)
        if passed[lo]:
            break
        lo -= 1
    return CapacityResult(LoadUnit(unit).value, round(lo * step, 6), lo > 0, lo == top, tuple(trials))
