"""What machine this is: its CPU model and feature flags (read once for every part of maskbench,
the int8 capability checks included) and :func:`describe_environment`, the one description of
the machine and library versions that benchmark records and ``check-conversion`` files keep, so
that a number read months later still says where it was measured.

CPU facts are read from the kernel (``/proc/cpuinfo``), else from NumPy's own CPU feature
detection (macOS, Windows; it does not know AVX-VNNI). Imports nothing heavy at module level."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

_NUMPY_NAMES = {"AVX512VNNI": "avx512_vnni", "AVX2": "avx2", "ASIMDDP": "asimddp"}
PACKAGES = ("maskbench", "torch", "torchvision", "numpy", "opencv-python-headless", "onnx", "onnxruntime",
            "onnxruntime-gpu", "openvino", "tensorrt", "pycocotools")
CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def cpu_flags() -> set[str]:
    """Lower-case CPU feature flags of this machine (empty when they cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    if flags:
        return flags
    try:
        import numpy as np

        features = np._core._multiarray_umath.__cpu_features__  # type: ignore[attr-defined]  # private, not in stubs
    except AttributeError:
        return set()
    return {flag for name, flag in _NUMPY_NAMES.items() if features.get(name)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def notable_cpu_flags() -> list[str]:
    """The flags that decide which kernels run (vector width, bf16, int8), as a record keeps them."""
    present = cpu_flags()
    return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` (distribution names; packages not installed are left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_environment(device: str = "cpu") -> dict:
    """This machine and its libraries as JSON-ready data; GPU name, CUDA and memory on a CUDA
    ``device``. torch's threads and GPU are read only where torch is loaded already (a process
    that computes with it): describing the machine never imports it (a deployed bundle has none)."""
    torch = sys.modules.get("torch")
    info = {
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_flags": notable_cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        **({"torch_threads": torch.get_num_threads()} if torch is not None else {}),
        # other work on the machine inflates latencies: the report can say the run was contended
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "packages": package_versions(),
    }
    if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        info["gpu_memory_total_mb"] = torch.cuda.get_device_properties(index).total_memory / (1024.0 * 1024.0)
    return info
