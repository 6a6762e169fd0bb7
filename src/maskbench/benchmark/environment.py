"""What a result was measured on: CPU, GPU, threads and library versions, kept with each record
so that a table read months later still says where its numbers come from."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from ..machine import cpu_flags, cpu_model

PACKAGES = ("maskbench", "torch", "torchvision", "numpy", "opencv-python-headless", "onnx", "onnxruntime",
            "onnxruntime-gpu", "openvino", "tensorrt", "pycocotools")
CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def notable_cpu_flags() -> list[str]:
    """The flags that decide which kernels run (vector width, bf16, int8), as a record keeps them."""
    present = cpu_flags()
    return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_environment(device: str = "cpu") -> dict:
    import torch

    info = {
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_flags": notable_cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # other work on the machine inflates latencies: the report can say the run was contended
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "packages": package_versions(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        info["gpu_memory_total_mb"] = torch.cuda.get_device_properties(index).total_memory / (1024.0 * 1024.0)
    return info
