"""A GPU's peak: matrix-multiply throughput through torch (cuBLAS) in fp32, fp16 and bf16, cached
per GPU, so GPU rows get a share of peak as CPU rows do (:mod:`.peak`, :mod:`.efficiency`).

What is measured: one ``(N x N) @ (N x N)`` product (N = :data:`MATRIX`, large enough that a
laptop GPU and an H100 both spend their time multiplying), the best call within
:data:`PROBE_SECONDS` per precision after warm-up, each call closed by a synchronize, counted as
2 x multiply-adds per second.

- fp32: with TF32 allowed where the GPU has it (compute capability 8.0 and up): the precision in
  which cuDNN runs fp32 convolutions by default, as torch and ONNX Runtime's CUDA provider do, so
  the detectors' fp32 rows are shared against the units they use (the note says so);
- fp16, bf16: the product in that type (bf16 where torch says the GPU supports it);
- int8: not measured (the GPU runtimes here run no int8).

Measured in its own process (``python -m maskbench.benchmark.peak_cuda --device cuda:0``), which
``maskbench benchmark`` starts before any worker: the benchmark's own process never opens a CUDA
context (it would hold GPU memory through the whole run). Workers only read the cache. The
probe runs on any torch device (``--device cpu`` rehearses it; the tests do).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..utils.files import atomic_open, cache_dir
from .peak import PrecisionPeak, PrecisionTable, best_call_seconds

MATRIX = 8192
PROBE_SECONDS = 0.3
PRECISIONS = ("fp32", "fp16", "bf16")
PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class DevicePeak(PrecisionTable):
    """One torch device's peak (``device_name``: the GPU's name; ``runtime``: torch and CUDA)."""

    device_name: str
    capability: str  # compute capability, e.g. "8.6"; "" on the CPU
    runtime: str
    matrix: int
    measured_at: str
    peaks: tuple[PrecisionPeak, ...]

    def cache_file(self) -> Path:
        identity = {"device_name": self.device_name, "capability": self.capability, "runtime": self.runtime}
        return cache_path(identity, self.matrix)  # the key of device_identity(), read back

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DevicePeak:
        return cls(**{**data, "peaks": tuple(PrecisionPeak(**peak) for peak in data["peaks"])})


def device_identity(device: str) -> dict:
    """What the cache key of ``device`` is made of (torch imported; on a GPU, CUDA initialised)."""
    import torch

    from ..utils.machine import cpu_model

    index = torch.device(device).index or 0
    if torch.device(device).type == "cuda":
        major, minor = torch.cuda.get_device_capability(index)
        name, capability = torch.cuda.get_device_name(index), f"{major}.{minor}"
    else:
        name, capability = cpu_model(), ""
    return {"device_name": name, "capability": capability,
            "runtime": f"torch {torch.__version__}, CUDA {torch.version.cuda}"}


def cache_path(identity: dict, matrix: int | None = None) -> Path:
    key = {**identity, "matrix": matrix or MATRIX}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir("peak") / f"peak_device_{digest}.json"


def cached_device_peak(device: str) -> DevicePeak | None:
    """The cached peak of ``device``, or None (never measures: what a worker reads)."""
    try:
        return DevicePeak.from_dict(json.loads(cache_path(device_identity(device)).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, ImportError, RuntimeError, AssertionError):
        return None  # absent, unreadable, of an older layout, or no such device


def device_peak(device: str, refresh: bool = False, matrix: int | None = None,
                seconds: float = PROBE_SECONDS) -> DevicePeak:
    """``device``'s peak: from the cache, or probed now and cached."""
    matrix = matrix or MATRIX
    identity = device_identity(device)
    path = cache_path(identity, matrix)
    if not refresh:
        try:
            return DevicePeak.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            pass
    peaks = tuple(_probe(device, precision, matrix, seconds) for precision in PRECISIONS)
    peak = DevicePeak(**identity, matrix=matrix, peaks=peaks,
                      measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    with atomic_open(path) as file:
        json.dump(peak.to_dict(), file, indent=1)
    return peak


def _probe(device: str, precision: str, matrix: int, seconds: float) -> PrecisionPeak:
    import torch

    on_gpu = torch.device(device).type == "cuda"
    if not on_gpu and precision != "fp32":
        return PrecisionPeak(precision, None, native=False,
                             note="off a GPU only fp32 is probed (a rehearsal: the CPU's peak is benchmark/peak.py's)")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return PrecisionPeak(precision, None, native=False, note="this GPU has no bf16: not measured")
    tf32 = on_gpu and precision == "fp32" and torch.cuda.get_device_capability(torch.device(device))[0] >= 8
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand((matrix, matrix), generator=generator).to(device, dtype) for _ in range(2))
    allowed = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32

    def product() -> None:
        torch.mm(a, b)
        if on_gpu:
            torch.cuda.synchronize(device)

    try:
        best = best_call_seconds(product, seconds)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed
    note = "TF32 tensor cores (cuDNN's default for fp32 convolutions)" if tf32 else ""
    return PrecisionPeak(precision, 2.0 * matrix ** 3 / best / 1e9, native=True,
                         runtime_precision="tf32" if tf32 else precision, kernel="torch.mm", note=note)


def probe_in_subprocess(device: str, timeout_s: float = PROBE_TIMEOUT_S, matrix: int | None = None) -> str:
    """Cache ``device``'s peak from a process of its own (this one opens no CUDA context); one
    line for the run's output. A failed probe costs the GPU rows their share, never the run."""
    command = [sys.executable, "-m", __name__, "--device", device, "--matrix", str(matrix or MATRIX)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"peak ({device}): not measured: the probe took over {timeout_s:.0f} s"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"peak ({device}): not measured: {lines[-1] if lines else f'exit {done.returncode}'}"
    peak = DevicePeak.from_dict(json.loads(done.stdout))
    return f"peak ({device}, {peak.device_name}, matrix multiply in {peak.runtime}): " + ", ".join(
        f"{p.precision} {p.gflops:,.0f} GFLOP/s" if p.gflops is not None else f"{p.precision} -" for p in peak.peaks)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m maskbench.benchmark.peak_cuda", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0", help="a torch device (cpu rehearses the probe)")
    parser.add_argument("--matrix", type=int, default=MATRIX, help=f"the product's size N (default {MATRIX})")
    parser.add_argument("--refresh", action="store_true", help="measure again even if cached")
    args = parser.parse_args(argv)
    print(json.dumps(device_peak(args.device, refresh=args.refresh, matrix=args.matrix).to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
