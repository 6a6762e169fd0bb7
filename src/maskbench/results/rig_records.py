"""What one rig measurement is (``maskbench rig``), kept in the same ``results.jsonl`` as the
benchmark's records so one folder holds both and ``maskbench report``/``recommend`` read both.

A :class:`RigRecord` is one model x runtime x precision x execution configuration at one load: a
single replay (``load_unit`` None: ``cameras`` cameras at ``rate_hz`` each), or a capacity search
(``load_unit`` "cameras" or "fps": the largest load that held, with every trial of the search in
``curve``, the points of the latency-versus-offered-load plot). Lines carry ``kind: "rig"``;
benchmark lines carry no ``kind``, so the benchmark's reader skips rig lines and this one skips
benchmark lines: old files read as before. The newest record of a key (on one machine) wins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..utils.files import append_line
from .machines import latest_per_machine
from .records import is_json, read_jsonl

RIG_KIND = "rig"
RIG_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LoadPoint:
    """One replay on the way to a capacity (or one run): the load offered and what came out."""

    offered_hz: float  # frames/s offered, all cameras together
    cameras: int
    rate_hz: float  # per camera
    holds: bool
    p50_ms: float | None = None
    p99_ms: float | None = None
    miss_share: float | None = None
    processed_hz: float | None = None

    @classmethod
    def from_dict(cls, data: dict) -> LoadPoint:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class RigRecord:
    """Latencies in ms from a frame's arrival to its detections; misses against ``deadline_ms``
    (a dropped frame is a miss). ``capacity`` is the largest load that held (cameras at
    ``rate_hz``, or Hz per camera for ``cameras`` cameras); for a single replay it is
    ``cameras`` when the run held and 0 when it did not."""

    key: str
    model: str
    runtime: str
    precision: str
    config: str  # sync, streams:N, batch
    cameras: int  # cameras of the run (of a capacity search: the base set, or the count at capacity)
    rate_hz: float  # per camera (of an fps search: the rate held)
    deadline_ms: float | None
    max_miss: float
    queue: str = "latest"
    alias: str = ""
    weights: str = ""
    source: str = ""
    load_unit: str | None = None  # None: one replay; "cameras" / "fps": a capacity search
    capacity: float = 0.0
    holds: bool = False
    capacity_at_limit: bool = False  # the search stopped at its limit: the capacity may be higher
    processed_hz: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    misses: int | None = None
    miss_share: float | None = None
    cpu_s_per_frame: float | None = None
    energy_j_per_frame: dict[str, float] = field(default_factory=dict)  # reading label -> J per frame
    energy_covers: dict[str, str] = field(default_factory=dict)  # reading label -> what it measures
    energy_statements: list[str] = field(default_factory=list)  # why a counter is missing
    curve: list[LoadPoint] = field(default_factory=list)
    zoo_box_ap: float | None = None
    zoo_mask_ap: float | None = None
    machine: dict = field(default_factory=dict)  # utils.machine.describe_environment()
    started_at: str = ""
    kind: str = RIG_KIND
    schema: int = RIG_SCHEMA_VERSION

    @property
    def offered_hz(self) -> float:
        return self.cameras * self.rate_hz

    @property
    def has_energy(self) -> bool:
        return bool(self.energy_j_per_frame)

    def label(self) -> str:
        return f"{self.alias or self.model} {self.runtime}/{self.precision} {self.config}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RigRecord:
        data = dict(data)
        data["curve"] = [LoadPoint.from_dict(p) for p in data.get("curve") or []]
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def rig_key(model: str, runtime: str, precision: str, config: str, *, cameras: int, rate_hz: float,
            load_unit: str | None, settings: dict) -> str:
    """Readable and stable: ``rig/model/runtime/precision/config/3x12Hz/replay#hash``; the hash
    covers every setting (source, deadline, queue, duration...) so a rerun replaces its record."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return (f"rig/{model}/{runtime}/{precision}/{config}/{cameras}x{rate_hz:g}Hz/"
            f"{'max-' + load_unit if load_unit else 'replay'}#{digest}")


def append_rig_record(path: Path, record: RigRecord) -> None:
    """One whole fsynced line, like the benchmark's records (:func:`~maskbench.utils.files.append_line`)."""
    append_line(path, json.dumps(record.to_dict(), sort_keys=True), last_line_ok=is_json)


def is_rig_line(data: object) -> bool:
    return isinstance(data, dict) and data.get("kind") == RIG_KIND


def read_rig_records(path: Path) -> list[RigRecord]:
    """The rig records of a results file, in order (benchmark lines skipped; a torn last line
    skipped; any other unreadable rig line is an error naming the file and line)."""
    return read_jsonl(path, is_rig_line, RigRecord.from_dict, "a rig record")


def latest_rig_records(records: list[RigRecord]) -> list[RigRecord]:
    """The newest record of each key and machine, in first-seen order."""
    return latest_per_machine(records, lambda r: r.key, lambda r: r.machine)


