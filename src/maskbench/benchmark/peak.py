"""The machine's peak: matrix throughput in fp32, bf16 and int8, measured through the runtime the
benchmark uses on a CPU (OpenVINO), cached per machine, so every benchmark row can say how much
of the silicon it uses (:mod:`.efficiency`).

What is measured, per precision: two graphs built with OpenVINO's opset API and compiled with the
benchmark's own CPU config (threads, precision hint, latency hint:
:func:`maskbench.pipeline.graph_sessions.compile_config`), the best of the calls made in
:data:`PROBE_SECONDS` each, as 2 x multiply-adds per second; the faster graph is the peak:

- a ``(1024 x 1024) @ (1024 x 1024)`` product (the kernel of fully connected layers);
- a 3x3 convolution, 256 -> 256 channels over 64 x 64 (the detectors' own kind of layer). Its
  kernels can be much faster than the product's: on an AVX2-only EPYC, int8 ran 335 GOP/s as a
  convolution against 117 as a product (OpenVINO's int8 product there is ``jit_gemm_I8``), fp32
  176 against 136; with the product alone int8 rows got shares of "peak" far above 100 %.

The precisions:

- fp32: the graphs as they are;
- bf16: the same graphs under the ``bf16`` precision hint;
- int8: the pattern NNCF writes: the activation through a ``FakeQuantize`` (u8), the weights
  int8 constants dequantized per output channel; the CPU plugin's low-precision transformations
  turn it into an integer kernel. Counted as integer operations (GOP/s) like FLOPs.

Each graph is checked in the runtime's execution graph: its layer's ``runtimePrecision`` must be
the one asked for (bf16; u8/i8 for int8), else it gives no number (and if neither does, the note
says what ran). A precision OpenVINO does not list among the CPU's ``OPTIMIZATION_CAPABILITIES``
(BF16, INT8) is reported as not native and not measured: its number would be an emulation's.

Cached in ``cache_dir("peak")`` under a key of the CPU model, all its flags, the OpenVINO
version, the thread count and the probe's graphs; a peak probed while the machine was busy (load
average above its cores, or other processes keeping more than :data:`OTHERS_MARGIN` of a core busy
during the probe, from ``/proc/stat``) is returned but not cached. ``python -m maskbench.benchmark.peak
[--threads N] [--refresh]`` prints it as JSON.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..pipeline.graph_sessions import NATIVE_CAPABILITY, OPENVINO_DEVICE, compile_config
from ..results.machine_load import LOAD_MARGIN, OTHERS_MARGIN, CpuTimes
from ..runtimes.cpu_int8 import has_vnni, int8_instructions
from ..utils.files import atomic_open, cache_dir
from ..utils.machine import cpu_flags, cpu_model
from ..utils.timing import Stopwatch

PRECISIONS = ("fp32", "bf16", "int8")
MATRIX = 1024
PROBE_SECONDS = 0.5
# What the product's runtimePrecision must be in OpenVINO's execution graph for each precision.
RUNTIME_PRECISIONS = {"fp32": ("f32",), "bf16": ("bf16",), "int8": ("u8", "i8")}
PRODUCT_LAYERS = ("FullyConnected", "MatMul", "Gemm", "Convolution")
PROBE_GRAPHS = "matmul+conv3x3"  # part of the cache key: a peak of other graphs is measured again


@dataclass(frozen=True)
class PrecisionPeak:
    """One precision's peak; ``gflops`` None when not measured (not native, or the runtime ran
    another precision: ``note`` says which)."""

    precision: str
    gflops: float | None
    native: bool
    runtime_precision: str | None = None  # the product's runtimePrecision in the execution graph
    kernel: str | None = None  # its primitiveType, e.g. brgemm_avx512_amx, jit_gemm_I8
    note: str = ""


class PrecisionTable:
    """A machine's ``peaks``, looked up by precision (the CPU's here, a GPU's in :mod:`.peak_cuda`)."""

    peaks: tuple[PrecisionPeak, ...]

    def get(self, precision: str) -> PrecisionPeak | None:
        return next((peak for peak in self.peaks if peak.precision == precision), None)

    def gflops(self, precision: str) -> float | None:
        peak = self.get(precision)
        return peak.gflops if peak else None

    def cache_file(self) -> Path:
        """Where this peak is cached (dropped when a row runs above it: :mod:`.efficiency`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class MachinePeak(PrecisionTable):
    cpu: str
    flags_sha256: str  # of the CPU's whole flag list (part of the cache key)
    runtime: str  # e.g. "openvino 2026.4.1-..."
    capabilities: tuple[str, ...]  # OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU
    threads: int
    matrix: int
    load_average: float | None  # 1-minute load average right before probing
    measured_at: str
    peaks: tuple[PrecisionPeak, ...]
    others_busy_cores: float | None = None  # other processes' mean busy cores while probing (None: not read)

    def quiet(self, cores: int) -> bool:
        """Was the machine quiet enough for this peak to be kept? Neither reading says otherwise."""
        return ((self.load_average is None or self.load_average <= cores + LOAD_MARGIN)
                and (self.others_busy_cores is None or self.others_busy_cores <= OTHERS_MARGIN))

    def cache_file(self) -> Path:
        return cache_path(self.threads)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MachinePeak:
        return cls(**{**data, "capabilities": tuple(data["capabilities"]),
                      "peaks": tuple(PrecisionPeak(**peak) for peak in data["peaks"])})


def default_threads() -> int:
    """The threads a graph runtime uses when none are given: torch's default (one per core)."""
    import torch

    return torch.get_num_threads()


def cache_key(threads: int) -> dict:
    import openvino as ov

    flags = " ".join(sorted(cpu_flags()))
    return {"cpu": cpu_model(), "flags_sha256": hashlib.sha256(flags.encode()).hexdigest(),
            "runtime": f"openvino {ov.__version__}", "threads": int(threads), "matrix": MATRIX,
            "graphs": PROBE_GRAPHS}


def cache_path(threads: int) -> Path:
    digest = hashlib.sha256(json.dumps(cache_key(threads), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir("peak") / f"peak_{digest}.json"


def cached_peak(threads: int) -> MachinePeak | None:
    """The cached peak of this machine at ``threads``, or None (never measures: what a worker
    reads, so it cannot probe while another job is timed)."""
    try:
        return MachinePeak.from_dict(json.loads(cache_path(threads).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, ImportError):
        return None  # absent, unreadable, of an older layout, or no OpenVINO: measured again


def machine_peak(threads: int | None = None, refresh: bool = False) -> MachinePeak:
    """This machine's peak at ``threads`` (default: :func:`default_threads`): from the cache, or
    probed now and cached unless the machine was busy."""
    threads = int(threads or default_threads())
    if not refresh:
        cached = cached_peak(threads)
        if cached is not None:
            return cached
    peak = probe_peak(threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if peak.quiet(cores):
        with atomic_open(cache_path(threads)) as file:
            json.dump(peak.to_dict(), file, indent=1)
    return peak


def probe_peak(threads: int, seconds: float = PROBE_SECONDS) -> MachinePeak:
    """Measure each precision now (about ``seconds`` each, plus compiling); not cached."""
    import openvino as ov

    core = ov.Core()
    capabilities = tuple(str(c) for c in core.get_property(OPENVINO_DEVICE, "OPTIMIZATION_CAPABILITIES"))
    key = cache_key(threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    before = CpuTimes.now()
    peaks = tuple(_probe_precision(core, precision, threads, capabilities, seconds) for precision in PRECISIONS)
    after = CpuTimes.now()
    others = before.others_busy_cores(after) if before and after else None
    return MachinePeak(cpu=key["cpu"], flags_sha256=key["flags_sha256"], runtime=key["runtime"],
                       capabilities=capabilities, threads=threads, matrix=MATRIX, load_average=load,
                       measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), peaks=peaks,
                       others_busy_cores=others)


def _probe_precision(core, precision: str, threads: int, capabilities: tuple[str, ...],
                     seconds: float) -> PrecisionPeak:
    needed = NATIVE_CAPABILITY.get(precision)
    if needed is not None and needed not in capabilities:
        return PrecisionPeak(precision, None, native=False,
                             note=f"not native: OpenVINO lists no {needed} for this CPU ({', '.join(capabilities)}); "
                                  "not measured (it would be emulated or run in f32)")
    int8 = precision == "int8"
    note = _int8_note() if int8 else ""
    best: PrecisionPeak | None = None
    refused = []
    for label, (graph, data, multiply_adds) in (("product", _product_graph(int8)),
                                                ("3x3 convolution", _conv_graph(int8))):
        compiled = core.compile_model(graph, OPENVINO_DEVICE, compile_config(threads, precision))
        ran_in, kernel = _product_precision(compiled)
        if ran_in not in RUNTIME_PRECISIONS[precision]:
            refused.append(f"the {label} in {ran_in} ({kernel})")
            continue
        call = functools.partial(compiled.create_infer_request().infer, {0: data})
        gflops = 2.0 * multiply_adds / best_call_seconds(call, seconds) / 1e9
        if best is None or best.gflops is None or gflops > best.gflops:
            best = PrecisionPeak(precision, gflops, native=True, runtime_precision=ran_in,
                                 kernel=f"{kernel} ({label})", note=note)
    if best is None:
        return PrecisionPeak(precision, None, native=True, note=f"OpenVINO ran {' and '.join(refused)}, "
                                                                f"not {precision}: not reported")
    return best


def best_call_seconds(call: Callable[[], object], seconds: float, warmup: int = 2) -> float:
    """The fastest of the calls made within ``seconds`` (at least three), after ``warmup`` calls:
    the best call is the one least disturbed by anything else on the machine."""
    for _ in range(warmup):
        call()
    best, calls, deadline = float("inf"), 0, time.perf_counter() + seconds
    while calls < 3 or time.perf_counter() < deadline:
        clock = Stopwatch()
        call()
        best = min(best, clock.lap())
        calls += 1
    return best


def _int8_note() -> str:
    isa = int8_instructions()
    if has_vnni():
        return f"int8 dot products: {', '.join(isa)}"
    return (f"no VNNI/AMX: int8 runs on {isa[0] if isa else 'no known int8 instruction'} "
            "(three instructions per dot product)")


def _int8_weights(shape: tuple[int, ...], rng: np.random.Generator):
    """NNCF's weights pattern: int8 constants times a per-output-channel scale."""
    import openvino as ov
    import openvino.opset13 as ops

    scale_shape = (shape[0],) + (1,) * (len(shape) - 1)
    return ops.multiply(ops.convert(ops.constant(rng.integers(-127, 128, shape, dtype=np.int8)), ov.Type.f32),
                        ops.constant(np.full(scale_shape, 0.01, dtype=np.float32)))


def _probe_input(shape: list[int], int8: bool):
    """The graph's parameter and what the kernel reads: itself, or NNCF's u8 ``FakeQuantize`` of it."""
    import openvino as ov
    import openvino.opset13 as ops

    a = ops.parameter(shape, ov.Type.f32, name="a")
    low, high = np.float32(0.0), np.float32(4.0)
    return a, (ops.fake_quantize(a, low, high, low, high, 256) if int8 else a)


def _product_graph(int8: bool):
    """(``a (M x K) @ w.T`` with ``w`` constant (N x K), its input, its multiply-adds)."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(1)
    a, x = _probe_input([MATRIX, MATRIX], int8)
    w = _int8_weights((MATRIX, MATRIX), rng) if int8 else \
        ops.constant(rng.standard_normal((MATRIX, MATRIX)).astype(np.float32))
    data = np.random.default_rng(0).uniform(0.0, 4.0, (MATRIX, MATRIX)).astype(np.float32)
    return ov.Model([ops.matmul(x, w, False, True)], [a], "maskbench_peak"), data, MATRIX ** 3


def _conv_graph(int8: bool):
    """(a 3x3 convolution of C -> C channels over S x S, C = MATRIX / 4 and S = MATRIX / 16 (256
    and 64 by default), its input, its multiply-adds)."""
    import openvino as ov
    import openvino.opset13 as ops

    channels, size = MATRIX // 4, MATRIX // 16
    rng = np.random.default_rng(1)
    a, x = _probe_input([1, channels, size, size], int8)
    shape = (channels, channels, 3, 3)
    w = _int8_weights(shape, rng) if int8 else ops.constant(rng.standard_normal(shape).astype(np.float32))
    conv = ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])
    data = np.random.default_rng(0).uniform(0.0, 4.0, (1, channels, size, size)).astype(np.float32)
    return ov.Model([conv], [a], "maskbench_peak_conv"), data, channels * channels * 9 * size * size


def _product_precision(compiled) -> tuple[str | None, str | None]:
    """(runtimePrecision, primitiveType) of the product or convolution in the execution graph."""
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if str(info["layerType"].astype(str)) in PRODUCT_LAYERS:
            return (str(info["runtimePrecision"].astype(str)).lower(), str(info["primitiveType"].astype(str)))
    return None, None


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m maskbench.benchmark.peak", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="default: one per core, as the runtimes")
    parser.add_argument("--refresh", action="store_true", help="measure again even if cached")
    args = parser.parse_args(argv)
    print(json.dumps(machine_peak(args.threads, refresh=args.refresh).to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
