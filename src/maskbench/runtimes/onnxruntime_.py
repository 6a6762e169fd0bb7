"""ONNX Runtime on the exported graph, fp32: on the CPU (``CPUExecutionProvider``) or on an
NVIDIA GPU (``CUDAExecutionProvider``, package ``onnxruntime-gpu``), the same ONNX file.

int8 (CPU): the graph statically quantized in QDQ format (:mod:`.quantize`), which ONNX Runtime
fuses into ``QLinearConv``/``QGemm`` kernels; refused on a CPU without an int8 dot-product
instruction (AVX2, VNNI, ARM SDOT), where MLAS would fall back to slow generic code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .base import RuntimeNotInstalled, UnsupportedPrecisionError, require_package
from .cpu_int8 import has_vnni, int8_instructions
from .exported import ExportedGraphRuntime
from .onnx_export import OUTPUT_NAMES


def require_int8_instructions() -> list[str]:
    """The CPU's int8 instructions (see :mod:`.cpu_int8`); raise when it has none."""
    found = int8_instructions()
    if not found:
        raise UnsupportedPrecisionError(
            "this CPU cannot run int8 natively (no AVX2, AVX-VNNI, AVX512-VNNI, AMX-INT8 or ARM dot product in its "
            "CPU flags); use --precision fp32")
    return found


class OnnxRuntimeRuntime(ExportedGraphRuntime):
    """``threads``: intra-op threads (default ``torch.get_num_threads()``); one inter-op thread."""

    name = "onnxruntime"

    def describe(self) -> str:
        text = super().describe()
        if self.precision != "int8":
            return text
        isa = int8_instructions()
        weights = "" if has_vnni() else ", 7-bit weights (reduce_range)"
        return f"{text[:-1]}, QDQ int8 on {', '.join(isa) or 'no int8 instructions'}{weights})"

    def _quantizer(self):
        from .quantize import onnxruntime_quantizer

        return onnxruntime_quantizer(reduce_range=not has_vnni())

    def providers(self) -> list:
        return ["CPUExecutionProvider"]

    def session_options(self):
        """This runtime's session settings (also those of the stage profiler's session)."""
        ort = require_package("onnxruntime", self.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no warnings per unused initialiser
        return options

    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        """A session on ``path``; ``extra_outputs``: tensor names also made graph outputs (on a
        copy of the model held in memory)."""
        ort = require_package("onnxruntime", self.name)
        options = self.session_options()
        source = str(path)
        if extra_outputs:
            onnx = require_package("onnx", self.name)
            proto = onnx.load(str(path))
            proto.graph.output.extend(onnx.ValueInfoProto(name=name) for name in extra_outputs)
            source = proto.SerializeToString()
        session = ort.InferenceSession(source, sess_options=options, providers=self.providers())
        self._check_session(session)
        return session

    def _check_session(self, session) -> None:
        """Nothing to check on the CPU."""

    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return tuple(compiled.run(OUTPUT_NAMES, feeds))


class OnnxRuntimeCudaRuntime(OnnxRuntimeRuntime):
    """``CUDAExecutionProvider`` first; ONNX Runtime places the few nodes it has no CUDA kernel
    for on the CPU provider (and copies between them). Inputs and outputs go through host
    memory, as for the CPU runtimes, so the latency includes those copies."""

    name = "onnxruntime-cuda"

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device})"

    def providers(self) -> list:
        index = torch.device(self.device).index or 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]

    def _check_session(self, session) -> None:
        # ONNX Runtime falls back to the CPU silently when the CUDA provider fails to load
        # (missing CUDA/cuDNN libraries): refuse that rather than time the CPU under this name.
        if "CUDAExecutionProvider" not in session.get_providers():
            raise RuntimeNotInstalled(
                "runtime 'onnxruntime-cuda': ONNX Runtime could not load its CUDA provider (it uses: "
                f"{', '.join(session.get_providers())}); check that the CUDA and cuDNN versions match "
                "onnxruntime-gpu's (https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html)")
