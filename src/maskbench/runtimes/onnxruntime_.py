"""ONNX Runtime on the CPU (``CPUExecutionProvider``), fp32, on the exported graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import require_package
from .exported import ExportedGraphRuntime
from .onnx_export import OUTPUT_NAMES


class OnnxRuntimeRuntime(ExportedGraphRuntime):
    """``threads``: intra-op threads (default ``torch.get_num_threads()``); one inter-op thread."""

    name = "onnxruntime"
    providers = ("CPUExecutionProvider",)  # a CUDA/TensorRT provider variant goes here later

    def _compile(self, path: Path):
        ort = require_package("onnxruntime", self.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no warnings per unused initialiser
        return ort.InferenceSession(str(path), sess_options=options, providers=list(self.providers))

    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return tuple(compiled.run(OUTPUT_NAMES, feeds))
