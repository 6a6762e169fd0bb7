"""What CPU this is: its model name and feature flags, read once for every part of maskbench
(the int8 capability checks and the environment kept with each benchmark record).

Read from the kernel (``/proc/cpuinfo``), else from NumPy's own CPU feature detection (macOS,
Windows; it does not know AVX-VNNI). Imports nothing heavy at module level."""

from __future__ import annotations

import platform
from pathlib import Path

_NUMPY_NAMES = {"AVX512VNNI": "avx512_vnni", "AVX2": "avx2", "ASIMDDP": "asimddp"}


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
