"""OpenVINO on the CPU, on the exported graph: fp32, or bf16 where the CPU has it natively.

OpenVINO's CPU plugin runs in bf16 by default on processors that have it (AMX/AVX512-BF16):
the precision hint is always set explicitly (``f32`` or ``bf16``) so that the numbers compared
and timed are in the precision asked for. bf16 is refused on a CPU without native bf16 (the
plugin would silently run f32 or emulate, and the result would be labelled wrongly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import UnsupportedPrecisionError, require_package
from .exported import ExportedGraphRuntime
from .onnx_export import OUTPUT_NAMES

DEVICE = "CPU"  # "GPU" (Intel iGPU) would go here later
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


def compile_config(threads: int, precision: str = "fp32") -> dict[str, str]:
    return {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY"}


def require_native_bf16(core=None) -> None:
    """Raise unless OpenVINO reports BF16 among the CPU's optimisation capabilities."""
    if core is None:
        core = require_package("openvino", "openvino").Core()
    capabilities = [str(c) for c in core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES")]
    if "BF16" not in capabilities:
        raise UnsupportedPrecisionError(
            f"this CPU cannot run bf16 natively (OpenVINO reports: {', '.join(capabilities)}); "
            "use --precision fp32, or a CPU with AVX512-BF16/AMX")


class OpenVinoRuntime(ExportedGraphRuntime):
    name = "openvino"

    def _compile(self, path: Path):
        ov = require_package("openvino", self.name)
        core = ov.Core()
        if self.precision == "bf16":
            require_native_bf16(core)
        compiled = core.compile_model(core.read_model(str(path)), DEVICE, compile_config(self.threads, self.precision))
        return compiled, compiled.create_infer_request()

    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        model, request = compiled
        request.infer(feeds)
        return tuple(request.get_tensor(model.output(name)).data.copy() for name in OUTPUT_NAMES)

    def precision_in_use(self) -> list[str]:
        """The compiled models' ``INFERENCE_PRECISION_HINT`` (a check that the precision was kept)."""
        return [str(model.get_property("INFERENCE_PRECISION_HINT")) for model, _ in self._compiled.values()]
