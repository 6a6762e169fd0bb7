"""How close a benchmark row comes to the machine: the graph's FLOPs per image
(:mod:`maskbench.export.flops`) over the median of the timed inference stage, as GFLOP/s, and
its share of the peak matrix throughput in the row's precision (:mod:`.peak` for the CPU,
:mod:`.peak_cuda` for a GPU).

The share counts all of the inference stage's time (NMS, RoI pooling, reorders included)
against the multiply-adds alone: a share well below 1 says the matrix units wait; it is not
a roofline. int8 rows are compared with the int8 peak (integer operations per second).

:func:`efficiency` is the pure function; :func:`fill_efficiency` is what the worker calls after
timing (never inside it): FLOPs from the runtime's fp32 export, or for rows without a graph
(torch, torch-compile) from one eager forward per input size under torch's
``FlopCounterMode`` (:func:`eager_flops`, the same rule); the peak from the cache only (measured
once per run by ``maskbench benchmark`` before any worker starts, so no probe runs while a job is
timed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results.records import BenchmarkRecord
from ..utils.files import atomic_open, cache_dir
from .peak import PrecisionTable, cached_peak


@dataclass(frozen=True)
class Efficiency:
    gflop: float | None = None  # per image, by the FLOP rule
    achieved_gflops: float | None = None  # gflop / median inference seconds
    peak_gflops: float | None = None  # the machine's peak in this precision (None: none measured)
    peak_share: float | None = None  # achieved / peak


def efficiency(flops: float | None, inference_median_ms: float | None, precision: str,
               peak: PrecisionTable | None) -> Efficiency:
    """The figures of one row; each is None where its inputs are missing. A row above the peak
    gets no share: the peak is an upper bound, so its probe was disturbed (see
    :func:`fill_efficiency`)."""
    gflop = flops / 1e9 if flops is not None else None
    achieved = gflop / (inference_median_ms / 1000.0) if gflop is not None and inference_median_ms else None
    peak_gflops = peak.gflops(precision) if peak is not None else None
    share = achieved / peak_gflops if achieved is not None and peak_gflops else None
    return Efficiency(gflop, achieved, peak_gflops, share if share is None or share <= 1.0 else None)


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


def eager_flops(model, tensor, img_shape: tuple[int, int]) -> int:
    """FLOPs of one eager forward by the graph counter's rule (torch's ``FlopCounterMode``: matrix
    products and convolutions at 2 per multiply-add), on the model's own device in float32.
    Attention runs as plain matrix products here (the counter has no formula for the CPU's fused
    attention kernel, and would miss RF-DETR-Seg's attention). Rows after an NMS are the ones this
    frame keeps; the graph count takes the NMS bound instead (equal on random weights, whose
    count is fixed; a trained model's frame may keep fewer)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    needs_grad = [p for p in model.parameters() if p.requires_grad]
    for parameter in needs_grad:  # the counter's module hooks want no leaf that needs a gradient
        parameter.requires_grad_(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(tensor.to(device, torch.float32), [tuple(img_shape)])
    finally:
        for parameter in needs_grad:
            parameter.requires_grad_(True)
    return int(counter.get_total_flops())


NetworkInputs = Callable[[], list[tuple[Any, tuple[int, int]]]]
FrameCount = Callable[[Any, tuple[int, int]], float]


def _frame_counter(runtime, loaded) -> tuple[Callable[[Any, tuple[int, int]], Any], FrameCount] | None:
    """(the size a frame runs at, the FLOPs of a frame of that size) for this row: by its graph
    of that size, else by the eager model; None with neither (a graph row's freed eager model)."""
    graphs = getattr(runtime, "onnx_paths", {})
    if graphs:
        rows = tuple(map(int, loaded.model.rows_after_nms()))

        def count_graph(tensor, shape: tuple[int, int]) -> float:
            return graph_flops(graphs[runtime.graph_target(tensor, shape)], rows)

        return runtime.graph_target, count_graph
    if next(loaded.model.parameters()).device.type == "meta":
        return None
    return (lambda tensor, _: tuple(tensor.shape)), lambda tensor, shape: eager_flops(loaded.model, tensor, shape)


def _row_flops(runtime, loaded, network_inputs: NetworkInputs) -> float | None:
    """The row's FLOPs per image: the mean over its timed frames (keep-ratio frames of several
    padded sizes run graphs of several sizes), each size counted once. None where it cannot be
    had (one line says why: the timings stand without it)."""
    try:
        counter = _frame_counter(runtime, loaded)
        if counter is None:
            return None
        size_of, count = counter
        by_size: dict[Any, float] = {}
        counts = []
        for tensor, shape in network_inputs():
            size = size_of(tensor, shape)
            if size not in by_size:
                by_size[size] = count(tensor, shape)
            counts.append(by_size[size])
        return sum(counts) / len(counts) if counts else None
    except Exception as err:  # noqa: BLE001 - the timings stand without it
        print(f"no FLOP count for {runtime.describe()}: {type(err).__name__}: {err}", file=sys.stderr)
        return None


def fill_efficiency(record: BenchmarkRecord, runtime, loaded, network_inputs: NetworkInputs) -> None:
    """Set the record's efficiency fields (left None where they cannot be had).
    ``network_inputs`` gives the timed frames as the network takes them (each prepared tensor and
    image shape)."""
    if not record.inference:
        return
    flops = _row_flops(runtime, loaded, network_inputs)
    peak = _row_peak(record)
    figures = efficiency(flops, record.inference.get("p50_ms"), record.precision, peak)
    record.gflop, record.achieved_gflops = figures.gflop, figures.achieved_gflops
    record.peak_gflops, record.peak_share = figures.peak_gflops, figures.peak_share
    if peak and figures.peak_gflops and figures.achieved_gflops and figures.achieved_gflops > figures.peak_gflops:
        _forget_peak(record, peak, figures)


def _forget_peak(record: BenchmarkRecord, peak: PrecisionTable, figures: Efficiency) -> None:
    """A row ran above the cached peak: the probe was disturbed (other work on the machine while
    it ran, which the load average, a minute's mean, did not show). The row keeps no share, and
    the cached peak is dropped so that the next run probes again; one line says so."""
    peak.cache_file().unlink(missing_ok=True)
    print(f"{record.precision} row at {figures.achieved_gflops:,.0f} GFLOP/s, above the cached peak of "
          f"{figures.peak_gflops:,.0f}: that probe was disturbed; no share given, the peak is probed again "
          "next run (or now: python -m maskbench.benchmark.peak --refresh)", file=sys.stderr)


def _row_peak(record: BenchmarkRecord) -> PrecisionTable | None:
    """The cached peak of the row's machine: the CPU's at its thread count, or its GPU's."""
    device = str(record.device)
    if device.startswith("cuda"):
        from .peak_cuda import cached_device_peak

        return cached_device_peak(device)
    return cached_peak(int(record.threads)) if device.startswith("cpu") and record.threads else None
