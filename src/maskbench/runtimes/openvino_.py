"""OpenVINO on the CPU, fp32, on the exported graph.

OpenVINO's CPU plugin runs in bf16 by default on processors that have it (AMX/AVX512-BF16):
the precision hint is set to f32 explicitly so that the numbers compared and timed are fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import require_package
from .exported import ExportedGraphRuntime
from .onnx_export import OUTPUT_NAMES

DEVICE = "CPU"  # "GPU" (Intel iGPU) would go here later


def compile_config(threads: int) -> dict[str, str]:
    return {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


class OpenVinoRuntime(ExportedGraphRuntime):
    name = "openvino"

    def _compile(self, path: Path):
        ov = require_package("openvino", self.name)
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), DEVICE, compile_config(self.threads))
        return compiled, compiled.create_infer_request()

    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        model, request = compiled
        request.infer(feeds)
        return tuple(request.get_tensor(model.output(name)).data.copy() for name in OUTPUT_NAMES)

    def precision_in_use(self) -> list[str]:
        """The compiled models' ``INFERENCE_PRECISION_HINT`` (a check that fp32 was kept)."""
        return [str(model.get_property("INFERENCE_PRECISION_HINT")) for model, _ in self._compiled.values()]
