"""The benchmark's default precisions: fp32 plus the fastest reduced precision this machine runs
natively, so the first answer a user gets is not the slow one (issue 29).

The rule (OpenVINO on the CPU; the other runtimes keep fp32 alone by default):

- bf16 is a candidate where OpenVINO lists ``BF16`` among the CPU's ``OPTIMIZATION_CAPABILITIES``
  and the CPU flags show AVX512-BF16 or AMX-BF16 (flags unreadable: OpenVINO's word is taken);
- int8 is a candidate where OpenVINO lists ``INT8``, the CPU has an int8 dot-product
  instruction (AMX-INT8, AVX512-VNNI or AVX-VNNI: without one, int8 runs on AVX2's three-
  instruction sequence and is rarely faster than fp32) and NNCF, the quantizer (the ``int8``
  extra), is installed;
- of the candidates, int8 is chosen when both are: per multiply-add instruction, VNNI and
  AMX-INT8 do twice the work of AVX512-BF16 and AMX-BF16. Whether a model reaches that is what
  the benchmark then measures (``--fidelity`` is on for the reduced row, so the report says
  what it costs in agreement with fp32).

The capabilities are read from the runtime and the kernel (:meth:`Capabilities.read`); tests
pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline.graph_sessions import OPENVINO_DEVICE
from ..utils.machine import cpu_flags
from ..utils.packages import importable

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_DOT_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
REDUCED_RUNTIMES = ("openvino",)


@dataclass(frozen=True)
class Capabilities:
    runtime: tuple[str, ...]  # OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU (empty: not installed)
    cpu_flags: frozenset[str]
    nncf: bool

    @classmethod
    def read(cls) -> Capabilities:
        runtime: tuple[str, ...] = ()
        if importable("openvino"):
            import openvino as ov

            runtime = tuple(str(c) for c in ov.Core().get_property(OPENVINO_DEVICE, "OPTIMIZATION_CAPABILITIES"))
        return cls(runtime=runtime, cpu_flags=frozenset(cpu_flags()), nncf=importable("nncf"))


@dataclass(frozen=True)
class PrecisionChoice:
    precisions: tuple[str, ...]  # fp32 first
    reduced: tuple[str, ...]  # the reduced ones: measured with --fidelity
    reason: str


def _present(flags: frozenset[str], wanted: tuple[str, ...]) -> list[str]:
    return [flag for flag in wanted if flag in flags]


def choose_precisions(runtimes: list[str] | tuple[str, ...], caps: Capabilities) -> PrecisionChoice:
    """fp32 plus the fastest native reduced precision for ``runtimes`` (see the module's rule)."""
    if not any(runtime in REDUCED_RUNTIMES for runtime in runtimes):
        return PrecisionChoice(("fp32",), (), f"fp32 only: a reduced precision is chosen by default for "
                                              f"{', '.join(REDUCED_RUNTIMES)} only")
    bf16_flags = _present(caps.cpu_flags, BF16_FLAGS)
    int8_flags = _present(caps.cpu_flags, INT8_DOT_FLAGS)
    bf16 = "BF16" in caps.runtime and (bool(bf16_flags) or not caps.cpu_flags)
    int8_missing = [need for need, missing in (
        ("VNNI or AMX-INT8", "INT8" not in caps.runtime or not int8_flags),
        ("NNCF (pip install 'maskbench[int8]')", not caps.nncf)) if missing]
    if not int8_missing:
        preferred = f"; preferred to bf16 ({', '.join(bf16_flags)})" if bf16 else ""
        return PrecisionChoice(("fp32", "int8"), ("int8",), f"int8 ({', '.join(int8_flags)}{preferred})")
    no_int8 = f"int8 needs {' and '.join(int8_missing)}"
    if bf16:
        return PrecisionChoice(("fp32", "bf16"), ("bf16",),
                               f"bf16 ({', '.join(bf16_flags) or 'OpenVINO lists BF16'}); {no_int8}")
    return PrecisionChoice(("fp32",), (), f"fp32 only: no native bf16 (needs AVX512-BF16 or AMX-BF16); {no_int8}")
