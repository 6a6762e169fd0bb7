"""Synthetic rig records (what ``maskbench rig`` appends to results.jsonl) for the report and
recommend tests: no replay runs. A capacity record's curve is made from an arithmetic queue: a
service time per frame and a number of streams; loads above capacity are late and fail."""

from __future__ import annotations

from maskbench.results.rig_records import LoadPoint, RigRecord, rig_key
from maskbench.zoo import get_spec

MACHINE_A = {"cpu": "Synthetic CPU A", "usable_cpus": 2}
MACHINE_B = {"cpu": "Synthetic CPU B", "gpu": "Synthetic GPU", "usable_cpus": 8}


def curve(service_ms: float, streams: int, rate_hz: float, max_cameras: int) -> list[LoadPoint]:
    """1..max_cameras cameras at ``rate_hz``: p50 the service time, p99 one queued frame more,
    until the offered load passes what the streams serve (then p99 is past any deadline)."""
    served = streams * 1000.0 / service_ms
    points = []
    for cameras in range(1, max_cameras + 1):
        offered = cameras * rate_hz
        holds = offered <= served
        p99 = service_ms * (1 + (cameras - 1) // streams) if holds else 10 * service_ms
        points.append(LoadPoint(offered, cameras, rate_hz, holds, service_ms, p99, 0.0 if holds else 0.4,
                                min(offered, served)))
    return points


def make_rig_record(alias: str, runtime: str = "openvino", precision: str = "fp32", config: str = "sync", *,
                    capacity: float = 3, rate_hz: float = 12.0, deadline_ms: float = 150.0, p99_ms: float = 100.0,
                    cpu_s_per_frame: float = 0.05, energy: dict[str, float] | None = None, machine: dict | None = None,
                    load_unit: str | None = "cameras", service_ms: float | None = None, streams: int = 1,
                    **fields) -> RigRecord:
    spec = get_spec(alias)
    machine = MACHINE_A if machine is None else machine
    cameras = int(capacity) if load_unit == "cameras" else int(fields.pop("cameras", 3))
    points = curve(service_ms, streams, rate_hz, int(capacity) + 2) if service_ms else []
    values = dict(
        key=rig_key(spec.name, runtime, precision, config, cameras=cameras, rate_hz=rate_hz, load_unit=load_unit,
                    settings={"deadline_ms": deadline_ms}),
        model=spec.name, alias=spec.alias, runtime=runtime, precision=precision, config=config, cameras=cameras,
        rate_hz=rate_hz, deadline_ms=deadline_ms, max_miss=0.01, load_unit=load_unit, capacity=capacity,
        holds=capacity > 0, processed_hz=cameras * rate_hz, p50_ms=p99_ms * 0.6, p99_ms=p99_ms, miss_share=0.0,
        cpu_s_per_frame=cpu_s_per_frame, energy_j_per_frame=dict(energy or {}), curve=points,
        zoo_box_ap=spec.weights.box_ap, zoo_mask_ap=spec.weights.mask_ap, machine=dict(machine),
        energy_statements=[] if energy else ["RAPL: no /sys/class/powercap on this machine"])
    values.update(fields)
    return RigRecord(**values)
