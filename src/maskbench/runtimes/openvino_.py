"""OpenVINO on the CPU, on the exported graph: fp32, bf16 where the CPU has it natively, int8.

OpenVINO's CPU plugin runs in bf16 by default on processors that have it (AMX/AVX512-BF16):
the precision hint is always set explicitly (``f32`` or ``bf16``) so that the numbers compared
and timed are in the precision asked for. bf16 is refused on a CPU without native bf16 (the
plugin would silently run f32 or emulate, and the result would be labelled wrongly).

int8: the graph is quantized with NNCF on calibration frames (:mod:`maskbench.export.quantize`;
its dense layers only) and compiled with the f32 hint, which keeps the layers NNCF left
unquantized in f32; refused where OpenVINO does not list INT8 among the CPU's optimisation
capabilities.

Stage profile (:meth:`OpenVinoRuntime.node_profiler`): a second compilation with
``"PERF_COUNT": "YES"`` added to :func:`compile_config`; after each call,
``request.get_profiling_info()`` gives every executed node's ``real_time``. OpenVINO reports the
fused node's name and lists every original node it absorbed in the runtime model's
``originalLayersNames`` (``/backbone/conv1/Conv/WithoutBiases``, ``.../Relu/fq_output_0`` for
NNCF's FakeQuantize in the int8 IR, reorders named ``<parent>_<layout>_<layout>_<child>``);
nodes it creates itself (``ConvolutionBackpropData_2795``) take the stage of the nearest named
producer in the runtime graph, else consumer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..export.onnx_export import ExportTarget
from ..export.quantize import openvino_quantizer
from ..pipeline.graph_sessions import FIX_WITHOUT, PRECISION_HINTS, compile_config, missing_native_precision  # noqa: F401 (PRECISION_HINTS: its old home)
from ..pipeline.graph_sessions import OPENVINO_DEVICE as DEVICE
from ..utils.errors import RuntimeNotInstalled
from ..utils.packages import importable, require_package
from .cpu_int8 import int8_instructions
from .exported import ExportedGraphRuntime
from .registry import UnsupportedPrecisionError

NNCF_INSTALL = "pip install 'maskbench[int8]'  (or: pip install nncf)"


def optimization_capabilities(core=None) -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU, e.g. ``['FP32', 'INT8', 'BIN']``."""
    if core is None:
        core = require_package("openvino", "openvino").Core()
    return [str(c) for c in core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES")]


def require_native_bf16(core=None) -> None:
    """Raise unless OpenVINO reports BF16 among the CPU's optimisation capabilities."""
    reason = missing_native_precision(optimization_capabilities(core), "bf16")
    if reason:
        raise UnsupportedPrecisionError(f"{reason}; {FIX_WITHOUT['bf16']}")


def require_native_int8(core=None) -> None:
    """Raise unless OpenVINO reports INT8 among the CPU's optimisation capabilities and NNCF
    (the quantizer) is installed."""
    reason = missing_native_precision(optimization_capabilities(core), "int8")
    if reason:
        raise UnsupportedPrecisionError(f"{reason}; {FIX_WITHOUT['int8']}")
    if not importable("nncf"):
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
        return openvino_quantizer(transformer="swin" in self.loaded.spec.backbone.lower())

    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        """``extra_outputs``: tensor names also made outputs (``Model.add_outputs``)."""
        ov = self.require("openvino")
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

    def _run(self, compiled, feeds: dict[str, np.ndarray],
             names: Sequence[str]) -> tuple[np.ndarray, ...]:
        model, request = compiled
        request.infer(feeds)
        return tuple(request.get_tensor(model.output(name)).data.copy() for name in names)

    def node_profiler(self, target: ExportTarget) -> OpenVinoNodeProfiler:
        onnx_path, path = self.graph_files(target)
        return OpenVinoNodeProfiler(self, path, onnx_path)

    def precision_in_use(self) -> list[str]:
        """The compiled models' ``INFERENCE_PRECISION_HINT`` (a check that the precision was kept)."""
        return [str(model.get_property("INFERENCE_PRECISION_HINT")) for model, _ in self._compiled.values()]


class OpenVinoNodeProfiler:
    """``path`` (the file the runtime compiles) compiled with the runtime's own settings plus
    per-node profiling; ``onnx_path``: the fp32 export whose node names it reports."""

    def __init__(self, runtime: OpenVinoRuntime, path: Path, onnx_path: Path) -> None:
        ov = runtime.require("openvino")
        core = ov.Core()
        config = {**compile_config(runtime.threads, runtime.precision), "PERF_COUNT": "YES"}
        self.compiled = core.compile_model(core.read_model(str(path)), DEVICE, config)
        self.request = self.compiled.create_infer_request()
        self.onnx_path = onnx_path

    def _runtime_node_stages(self, lookup: Callable[[str], str | None]) -> tuple[dict[str, str | None],
                                                                                dict[str, str]]:
        """Stage of every node of the compiled (runtime) graph: by its original layer names,
        else by its own name, else the nearest placed producer, else consumer."""
        ops = list(self.compiled.get_runtime_model().get_ordered_ops())
        names = [op.get_friendly_name() for op in ops]
        position = {name: i for i, name in enumerate(names)}
        stage: list[str | None] = []
        for op, name in zip(ops, names):
            info = op.get_rt_info()
            original = str(info["originalLayersNames"].astype(str)) if "originalLayersNames" in info else ""
            found = None
            for candidate in [*(n for n in original.split(",") if n), name]:
                found = lookup(candidate)
                if found is not None:
                    break
            stage.append(found)
        how = {name: "name" for name, s in zip(names, stage) if s is not None}
        producers = [[position.get(v.get_node().get_friendly_name()) for v in op.input_values()] for op in ops]
        consumers: list[list[int]] = [[] for _ in ops]
        for i, inputs in enumerate(producers):
            for j in inputs:
                if j is not None:
                    consumers[j].append(i)
        for i in range(len(ops)):  # in execution order: producers are placed first
            if stage[i] is None:
                stage[i] = _nearest(i, producers, stage)
        for i in reversed(range(len(ops))):
            if stage[i] is None:
                stage[i] = _nearest(i, consumers, stage)
        for name, s in zip(names, stage):
            if s is not None and name not in how:
                how[name] = "neighbour"
        return dict(zip(names, stage)), how

    def profile(self, feeds_list: list[dict], repeat: int,
                lookup: Callable[[str], str | None]) -> list[tuple[list[tuple[str | None, str, float]], float]]:
        """Per profiled call: its nodes as ``(stage or None, "name" | "neighbour" | "other",
        seconds)`` and its wall time, after one untimed call."""
        node_stage, how = self._runtime_node_stages(lookup)
        self.request.infer(feeds_list[0])  # untimed: the first call's allocations
        calls = []
        for _ in range(repeat):
            for feeds in feeds_list:
                t0 = time.perf_counter()
                self.request.infer(feeds)
                wall = time.perf_counter() - t0
                entries = []
                for info in self.request.get_profiling_info():
                    value = info.real_time.total_seconds()
                    if value <= 0:
                        continue
                    name = info.node_name
                    if name not in node_stage:  # not a node of the runtime graph: its name alone
                        node_stage[name] = lookup(name)
                        if node_stage[name] is not None:
                            how[name] = "name"
                    entries.append((node_stage[name], how.get(name, "other"), value))
                calls.append((entries, wall))
        return calls


def _nearest(start: int, links: Sequence[Sequence[int | None]], stage: list[str | None]) -> str | None:
    """Breadth-first along ``links`` (producers or consumers): the first node with a stage."""
    seen, frontier = {start}, [start]
    while frontier:
        following = []
        for i in frontier:
            for j in links[i]:
                if j is None or j in seen:
                    continue
                if stage[j] is not None:
                    return stage[j]
                seen.add(j)
                following.append(j)
        frontier = following
    return None
