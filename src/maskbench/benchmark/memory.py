"""Memory a run costs: peak resident memory of this process, and its GPU memory on NVIDIA.

Linux keeps a process's peak RSS (``VmHWM``) and lets the process reset it (writing ``5`` to
``/proc/self/clear_refs``), so the peak while timing can be told apart from the peak of the
export/compile step before it. GPU memory comes from NVML (package ``nvidia-ml-py``, optional):
what the driver has given this process, CUDA context and runtime pools included, which is what
competes with the rest of the robot's software; torch's own allocator peak is kept beside it.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (since the last reset), in MiB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def reset_peak_rss() -> bool:
    """Start a new peak (Linux >= 4.0); False where the system does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def release_free_memory() -> bool:
    """Give memory that was freed back to the system (glibc's ``malloc_trim``), so that RSS
    measured afterwards is what the process holds, not what its allocator kept for reuse
    (e.g. the eager weights dropped once a graph runtime has compiled its own copy).
    False where the C library has no ``malloc_trim`` (musl, macOS)."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def gpu_process_memory_mb(device_index: int = 0) -> float | None:
    """GPU memory used by this process according to NVML, or None (no NVML / no GPU)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    return proc.usedGpuMemory / (1024.0 * 1024.0)
            return None
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None


def torch_cuda_peak_mb(device: str) -> float | None:
    """Peak memory of torch's CUDA allocator on ``device`` (None on the CPU)."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / (1024.0 * 1024.0)


def file_size_mb(paths) -> float | None:
    sizes = [Path(p).stat().st_size for p in paths if Path(p).exists()]
    return sum(sizes) / (1024.0 * 1024.0) if sizes else None
