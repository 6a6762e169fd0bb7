"""Which int8 instructions this CPU has: what the int8 kernels of ONNX Runtime (MLAS) and
OpenVINO (oneDNN) run on, and so whether int8 is native here or would be emulated.

Read from the kernel's CPU flags (``/proc/cpuinfo``), else from NumPy's own CPU feature
detection (macOS, Windows; it does not know AVX-VNNI). Best first: AMX-INT8 and the VNNI dot
products multiply-add int8 in one instruction; AVX2's ``VPMADDUBSW`` needs three (and can
saturate, hence ONNX Runtime's ``reduce_range`` there); ARM's ``SDOT`` (asimddp) is the NEON
dot product.
"""

from __future__ import annotations

from ..utils.machine import cpu_flags

# CPU flag (as /proc/cpuinfo spells it) -> name shown to users, best first.
INT8_FLAGS = {
    "amx_int8": "AMX-INT8",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx2": "AVX2",
    "asimddp": "ARM dot product (SDOT)",
}
VNNI_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp")


def int8_instructions(flags: set[str] | None = None) -> list[str]:
    """Names of the int8 instructions present, best first (empty: int8 would be emulated)."""
    flags = cpu_flags() if flags is None else flags
    return [name for flag, name in INT8_FLAGS.items() if flag in flags]


def has_vnni(flags: set[str] | None = None) -> bool:
    """An int8 dot-product instruction (no 16-bit intermediate that can saturate)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in VNNI_FLAGS)
