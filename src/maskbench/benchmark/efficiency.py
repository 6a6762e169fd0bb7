"""How close a benchmark row comes to the machine: the graph's FLOPs per image
(:mod:`maskbench.export.flops`) over the median of the timed inference stage, as GFLOP/s, and
its share of the peak matrix throughput in the row's precision (:mod:`.peak`).

The share counts all of the inference stage's time (NMS, RoI pooling, reorders included)
against the multiply-adds alone: a share well below 1 says the matrix units wait; it is not
a roofline. int8 rows are compared with the int8 peak (integer operations per second).

:func:`efficiency` is the pure function; :func:`fill_efficiency` is what the worker calls after
timing (never inside it): FLOPs from the runtime's fp32 export (graph runtimes only; eager
rows have no graph to count), the peak from the cache only (measured once per run by
``maskbench benchmark`` before any worker starts, so no probe runs while a job is timed).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..results.records import BenchmarkRecord
from ..utils.files import atomic_open, cache_dir
from .peak import MachinePeak, cached_peak


@dataclass(frozen=True)
class Efficiency:
    gflop: float | None = None  # per image, by the FLOP rule
    achieved_gflops: float | None = None  # gflop / median inference seconds
    peak_gflops: float | None = None  # the machine's peak in this precision (None: none measured)
    peak_share: float | None = None  # achieved / peak


def efficiency(flops: float | None, inference_median_ms: float | None, precision: str,
               peak: MachinePeak | None) -> Efficiency:
    """The figures of one row; each is None where its inputs are missing."""
    gflop = flops / 1e9 if flops is not None else None
    achieved = gflop / (inference_median_ms / 1000.0) if gflop is not None and inference_median_ms else None
    peak_gflops = peak.gflops(precision) if peak is not None else None
    share = achieved / peak_gflops if achieved is not None and peak_gflops else None
    return Efficiency(gflop, achieved, peak_gflops, share)


def graph_flops(onnx_path: Path, counts: tuple[int, ...]) -> int:
    """FLOPs of an exported file, cached beside maskbench's other caches (the export's file name
    carries its key; counting a large graph takes seconds)."""
    from ..export.flops import GraphFlops, count_flops

    cached = cache_dir("flops") / f"{onnx_path.name}.{'-'.join(map(str, counts)) or 'static'}.json"
    try:
        return GraphFlops.from_dict(json.loads(cached.read_text(encoding="utf-8"))).total
    except (OSError, ValueError, TypeError, KeyError):
        pass
    counted = count_flops(onnx_path, counts)
    with atomic_open(cached) as file:
        json.dump(counted.to_dict(), file, indent=1)
    return counted.total


def fill_efficiency(record: BenchmarkRecord, runtime, loaded) -> None:
    """Set the record's efficiency fields (left None where they cannot be had; one line says why)."""
    paths = list(getattr(runtime, "onnx_paths", {}).values())
    if not paths or not record.inference:
        return
    try:
        flops: float | None = graph_flops(paths[0], tuple(map(int, loaded.model.rows_after_nms())))
    except Exception as err:  # noqa: BLE001 - the timings stand without it
        print(f"no FLOP count for {paths[0]}: {type(err).__name__}: {err}", file=sys.stderr)
        flops = None
    peak = cached_peak(int(record.threads)) if str(record.device).startswith("cpu") and record.threads else None
    figures = efficiency(flops, record.inference.get("p50_ms"), record.precision, peak)
    record.gflop, record.achieved_gflops = figures.gflop, figures.achieved_gflops
    record.peak_gflops, record.peak_share = figures.peak_gflops, figures.peak_share
