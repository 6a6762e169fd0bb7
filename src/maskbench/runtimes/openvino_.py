"""OpenVINO on the CPU, on the exported graph: fp32, bf16 where the CPU has it natively, int8.

OpenVINO's CPU plugin runs in bf16 by default on processors that have it (AMX/AVX512-BF16):
the precision hint is always set explicitly (``f32`` or ``bf16``) so that the numbers compared
and timed are in the precision asked for. bf16 is refused on a CPU without native bf16 (the
plugin would silently run f32 or emulate, and the result would be labelled wrongly).

int8: the graph is quantized with NNCF on calibration frames (:mod:`.quantize`; its dense
layers only) and compiled with the f32 hint, which keeps the layers NNCF left unquantized in
f32; refused where OpenVINO does not list INT8 among the CPU's optimisation capabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import RuntimeNotInstalled, UnsupportedPrecisionError, _importable, require_package
from .cpu_int8 import int8_instructions
from .exported import ExportedGraphRuntime
from .onnx_export import OUTPUT_NAMES

DEVICE = "CPU"  # "GPU" (Intel iGPU) would go here later
# int8 lives in the quantized graph (FakeQuantize nodes); the hint is for everything else.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
NNCF_INSTALL = "pip install 'maskbench[int8]'  (or: pip install nncf)"


def compile_config(threads: int, precision: str = "fp32") -> dict[str, str]:
    return {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY"}


def optimization_capabilities(core=None) -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU, e.g. ``['FP32', 'INT8', 'BIN']``."""
    if core is None:
        core = require_package("openvino", "openvino").Core()
    return [str(c) for c in core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES")]


def require_native_bf16(core=None) -> None:
    """Raise unless OpenVINO reports BF16 among the CPU's optimisation capabilities."""
    capabilities = optimization_capabilities(core)
    if "BF16" not in capabilities:
        raise UnsupportedPrecisionError(
            f"this CPU cannot run bf16 natively (OpenVINO reports: {', '.join(capabilities)}); "
            "use --precision fp32, or a CPU with AVX512-BF16/AMX")


def require_native_int8(core=None) -> None:
    """Raise unless OpenVINO reports INT8 among the CPU's optimisation capabilities and NNCF
    (the quantizer) is installed."""
    capabilities = optimization_capabilities(core)
    if "INT8" not in capabilities:
        raise UnsupportedPrecisionError(
            f"this CPU cannot run int8 natively (OpenVINO reports: {', '.join(capabilities)}); "
            "use --precision fp32")
    if not _importable("nncf"):
        raise RuntimeNotInstalled("openvino int8 quantizes with NNCF, which is not installed; install it "
                                  f"with: {NNCF_INSTALL}")


class OpenVinoRuntime(ExportedGraphRuntime):
    name = "openvino"

    def describe(self) -> str:
        text = super().describe()
        if self.precision != "int8":
            return text
        isa = int8_instructions()
        return f"{text[:-1]}, NNCF int8 on {', '.join(isa) if isa else 'the CPU (instructions unknown)'})"

    def _quantizer(self):
        from .quantize import openvino_quantizer

        return openvino_quantizer(transformer="swin" in self.loaded.spec.backbone.lower())

    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        """``extra_outputs``: tensor names also made outputs (``Model.add_outputs``)."""
        ov = require_package("openvino", self.name)
        core = ov.Core()
        if self.precision == "bf16":
            require_native_bf16(core)
        if self.precision == "int8":
            require_native_int8(core)
        model = core.read_model(str(path))
        if extra_outputs:
            model.add_outputs(list(extra_outputs))
        compiled = core.compile_model(model, DEVICE, compile_config(self.threads, self.precision))
        return compiled, compiled.create_infer_request()

    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        model, request = compiled
        request.infer(feeds)
        return tuple(request.get_tensor(model.output(name)).data.copy() for name in OUTPUT_NAMES)

    def precision_in_use(self) -> list[str]:
        """The compiled models' ``INFERENCE_PRECISION_HINT`` (a check that the precision was kept)."""
        return [str(model.get_property("INFERENCE_PRECISION_HINT")) for model, _ in self._compiled.values()]
