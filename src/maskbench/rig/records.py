"""A rig run as records (:class:`~maskbench.results.rig_records.RigRecord`) appended to the
output folder's ``results.jsonl`` beside the benchmark's, so ``maskbench report`` and
``maskbench recommend`` read them; ``rig.json`` keeps the full results as before.

One record per configuration: a single replay (its cameras at their rate, held or not), or a
capacity search (the largest load that held, with every trial as a point of the load curve)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..results.records import RESULTS_FILE
from ..results.rig_records import LoadPoint, RigRecord, append_rig_record, rig_key
from ..utils.errors import MaskbenchError
from .capacity import CapacityResult, LoadUnit, Trial
from .replay import RigResult


@dataclass(frozen=True)
class RunContext:
    """What every record of one ``maskbench rig`` run shares."""

    model: dict  # command.bundle_summary(): model, alias, weights, runtime, precision...
    machine: dict  # utils.machine.describe_environment()
    source: str
    cameras: int  # the source's cameras
    rate_hz: float  # per camera (the slowest camera's)
    deadline_ms: float | None
    max_miss: float
    queue: str
    settings: dict  # everything else that defines the run (duration, window, threads...)

    def record(self, config: str, *, cameras: int, rate_hz: float, load_unit: str | None, **figures) -> RigRecord:
        model = str(self.model.get("model") or "")
        runtime, precision = str(self.model.get("runtime") or ""), str(self.model.get("precision") or "")
        settings = {**self.settings, "source": self.source, "deadline_ms": self.deadline_ms, "queue": self.queue,
                    "max_miss": self.max_miss, "model": self.model}
        box_ap, mask_ap = _zoo_ap(model)
        return RigRecord(
            key=rig_key(model, runtime, precision, config, cameras=cameras, rate_hz=rate_hz, load_unit=load_unit,
                        settings=settings),
            model=model, runtime=runtime, precision=precision, config=config, cameras=cameras, rate_hz=rate_hz,
            deadline_ms=self.deadline_ms, max_miss=self.max_miss, queue=self.queue,
            alias=str(self.model.get("alias") or ""), weights=str(self.model.get("weights") or ""),
            source=self.source, load_unit=load_unit, zoo_box_ap=box_ap, zoo_mask_ap=mask_ap, machine=self.machine,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures)


def replay_record(context: RunContext, config: str, result: RigResult) -> RigRecord:
    """One replay: its cameras at their rate; ``capacity`` is the camera count when it held."""
    overall, latency = result.overall, result.overall.latency
    holds = result.holds(context.max_miss)
    point = LoadPoint(overall.offered_hz, context.cameras, context.rate_hz, holds,
                      latency.p50_ms if latency else None, latency.p99_ms if latency else None,
                      overall.miss_share, overall.processed_hz)
    return context.record(
        config, cameras=context.cameras, rate_hz=context.rate_hz, load_unit=None,
        capacity=float(context.cameras) if holds else 0.0, holds=holds, processed_hz=overall.processed_hz,
        p50_ms=point.p50_ms, p99_ms=point.p99_ms, misses=overall.misses, miss_share=overall.miss_share,
        cpu_s_per_frame=result.cpu_s_per_frame, energy_j_per_frame=dict(result.energy_j_per_frame),
        energy_covers={r.label: r.covers for r in result.energy.readings},
        energy_statements=list(result.energy.statements), curve=[point])


def capacity_record(context: RunContext, config: str, capacity: CapacityResult) -> RigRecord:
    """A capacity search: the load held (cameras at the source's rate, or a rate for the source's
    cameras) with the figures of its last trial there; when nothing held, those of the smallest
    load tried (how far it is)."""
    by_cameras = capacity.unit == LoadUnit.CAMERAS.value

    def shape(load: float) -> tuple[int, float]:
        return (int(load), context.rate_hz) if by_cameras else (context.cameras, float(load))

    def point(trial: Trial) -> LoadPoint:
        cameras, rate = shape(trial.load)
        offered = trial.offered_hz if trial.offered_hz is not None else cameras * rate
        return LoadPoint(offered, cameras, rate, trial.holds, trial.p50_ms, trial.p99_ms, trial.miss_share,
                         trial.processed_hz)

    shown = capacity.at_capacity() or min(capacity.trials, key=lambda t: t.load, default=None)
    cameras, rate = shape(capacity.capacity) if capacity.confirmed else (context.cameras, context.rate_hz)
    figures: dict = {}
    if shown is not None:
        figures = {"processed_hz": shown.processed_hz, "p50_ms": shown.p50_ms, "p99_ms": shown.p99_ms,
                   "miss_share": shown.miss_share, "cpu_s_per_frame": shown.cpu_s_per_frame,
                   "energy_j_per_frame": dict(shown.energy_j_per_frame)}
    return context.record(config, cameras=cameras, rate_hz=rate, load_unit=capacity.unit,
                          capacity=capacity.capacity, holds=capacity.confirmed,
                          capacity_at_limit=capacity.at_limit,
                          curve=sorted((point(t) for t in capacity.trials), key=lambda p: p.offered_hz), **figures)


def append_records(out: Path, records: Sequence[RigRecord]) -> Path:
    """Each record as one whole line of ``out/results.jsonl``."""
    file = Path(out) / RESULTS_FILE
    for record in records:
        append_rig_record(file, record)
    return file


def _zoo_ap(model: str) -> tuple[float | None, float | None]:
    """The zoo's published box and mask AP of the model (official weights), or (None, None)."""
    from ..zoo import get_spec

    try:
        weights = get_spec(model).weights
    except (MaskbenchError, KeyError, ValueError):
        return None, None
    return weights.box_ap, weights.mask_ap
