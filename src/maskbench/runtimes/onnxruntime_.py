"""ONNX Runtime on the exported graph, fp32: on the CPU (``CPUExecutionProvider``) or on an
NVIDIA GPU (``CUDAExecutionProvider``, package ``onnxruntime-gpu``), the same ONNX file.

int8 (CPU): the graph statically quantized in QDQ format (:mod:`maskbench.export.quantize`), which
ONNX Runtime fuses into ``QLinearConv``/``QGemm`` kernels; refused on a CPU without an int8
dot-product instruction (AVX2, VNNI, ARM SDOT), where MLAS would fall back to slow generic code.

Stage profile (:meth:`OnnxRuntimeRuntime.node_profiler`): a second session with the runtime's
own settings plus ``SessionOptions.enable_profiling``; ``end_profiling()`` writes a JSON trace
whose ``Node`` events ``<node name>_kernel_time`` carry ``dur`` (microseconds), split into
calls by the ``model_run`` events. ONNX Runtime's names are node names or output-tensor names
with suffixes (``_nchwc``, ``_token_12``, ``_QuantizeLinear``, ``fused ...``); nodes it creates
itself (``ReorderInput_token_7``) take the stage of the previous named node in execution order,
the next one for ``ReorderInput`` (it feeds that node).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..export.onnx_export import ExportTarget
from ..export.quantize import onnxruntime_quantizer
from ..pipeline.graph_sessions import ort_session_options
from ..utils.errors import RuntimeNotInstalled
from .cpu_int8 import has_vnni, int8_instructions
from .exported import ExportedGraphRuntime
from .registry import UnsupportedPrecisionError


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
        return onnxruntime_quantizer(reduce_range=not has_vnni())

    def providers(self) -> list:
        return ["CPUExecutionProvider"]

    def session_options(self):
        """This runtime's session settings (also those of the stage profiler's session)."""
        ort = self.require("onnxruntime")
        return ort_session_options(ort, self.threads)

    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        """A session on ``path``; ``extra_outputs``: tensor names also made graph outputs (on a
        copy of the model held in memory)."""
        ort = self.require("onnxruntime")
        options = self.session_options()
        source = str(path)
        if extra_outputs:
            onnx = self.require("onnx")
            proto = onnx.load(str(path))
            proto.graph.output.extend(onnx.ValueInfoProto(name=name) for name in extra_outputs)
            source = proto.SerializeToString()
        session = ort.InferenceSession(source, sess_options=options, providers=self.providers())
        self._check_session(session)
        return session

    def _check_session(self, session) -> None:
        """Nothing to check on the CPU."""

    def _run(self, compiled, feeds: dict[str, np.ndarray],
             names: Sequence[str]) -> tuple[np.ndarray, ...]:
        return tuple(compiled.run(list(names), feeds))

    def _missing_outputs(self, path: Path, names: Sequence[str]) -> list[str]:
        import onnx

        present = {o for node in onnx.load(str(path), load_external_data=False).graph.node for o in node.output}
        return [n for n in names if n not in present]

    def node_profiler(self, target: ExportTarget) -> OnnxRuntimeNodeProfiler:
        onnx_path, path = self.graph_files(target)
        return OnnxRuntimeNodeProfiler(self, path, onnx_path)


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


class OnnxRuntimeNodeProfiler:
    """A profiling session on ``path`` (the file the runtime compiles) with the runtime's own
    settings; ``onnx_path``: the fp32 export whose node names it reports."""

    KERNEL = "_kernel_time"

    def __init__(self, runtime: OnnxRuntimeRuntime, path: Path, onnx_path: Path) -> None:
        ort = runtime.require("onnxruntime")
        options = runtime.session_options()  # the runtime's own settings, plus profiling
        options.enable_profiling = True
        self.tmp = tempfile.mkdtemp(prefix="maskbench-ort-profile-")
        options.profile_file_prefix = os.path.join(self.tmp, "profile")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=runtime.providers())
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.onnx_path = onnx_path

    def profile(self, feeds_list: list[dict], repeat: int,
                lookup: Callable[[str], str | None]) -> list[tuple[list[tuple[str | None, str, float]], float]]:
        """Per profiled call: its nodes as ``(stage or None, "name" | "neighbour" | "other",
        seconds)`` and its wall time, after one untimed call."""
        stage_of: dict[str, str | None] = {}

        def stage(name: str) -> str | None:
            if name not in stage_of:
                stage_of[name] = lookup(name)
            return stage_of[name]

        walls = []
        try:
            self.session.run(None, feeds_list[0])  # untimed: the first call's allocations
            for _ in range(repeat):
                for feeds in feeds_list:
                    t0 = time.perf_counter()
                    self.session.run(None, feeds)
                    walls.append(time.perf_counter() - t0)
            trace = Path(self.session.end_profiling())
            events = json.loads(trace.read_text(encoding="utf-8"))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                      if e.get("cat") == "Session" and e.get("name") == "model_run")
        runs = runs[1:]  # the untimed call
        nodes = sorted((e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith(self.KERNEL)),
                       key=lambda e: e["ts"])
        calls = []
        for (start, end), wall in zip(runs, walls):
            entries = [(e["name"][:-len(self.KERNEL)], e["dur"] * 1e-6) for e in nodes if start <= e["ts"] <= end]
            stages = [stage(name) for name, _ in entries]
            how = ["name" if s is not None else "other" for s in stages]
            for i in range(len(entries)):  # runtime-made nodes: the previous placed node's stage;
                if stages[i] is None:      # a ReorderInput: the next one's (it feeds that node)
                    feeds_next = entries[i][0].startswith("ReorderInput")
                    order = range(i + 1, len(entries)) if feeds_next else range(i - 1, -1, -1)
                    near = next((stages[j] for j in order if how[j] == "name"), None)
                    if near is not None:
                        stages[i], how[i] = near, "neighbour"
            calls.append(([(s, placed, value) for (_, value), s, placed in zip(entries, stages, how)], wall))
        return calls
