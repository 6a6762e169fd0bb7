"""Per-stage times of the runtimes that run the exported graph as one call (OpenVINO, ONNX Runtime).

The eager runtimes are timed stage by stage by calling the model's methods one after the other
(``benchmark/worker.py``). A graph runtime runs the whole network in one call, so its stages come
from the runtime's own per-node profiler instead, on a second copy of the graph compiled with the
same settings (threads, precision, the int8 artifact) plus profiling:

- OpenVINO: ``"PERF_COUNT": "YES"`` added to :func:`.openvino_.compile_config`; after each call,
  ``request.get_profiling_info()`` gives every executed node's ``real_time``.
- ONNX Runtime: ``SessionOptions.enable_profiling``; ``end_profiling()`` writes a JSON trace whose
  ``Node`` events ``<node name>_kernel_time`` carry ``dur`` (microseconds), split into calls by
  the ``model_run`` events.

Each profiled node's time goes to the network stage of its ONNX node (:func:`node_stages`), so a
call's stage times add up to the time the runtime's nodes ran (not the call's wall time: the gap
is the runtime's own overhead between nodes, reported beside them as ``profiled_call``).

From runtime names back to ONNX nodes (:class:`StageIndex.lookup`): both runtimes keep the ONNX
node names, decorated: OpenVINO reports the fused node's name and lists every original node it
absorbed in the runtime model's ``originalLayersNames`` (``/backbone/conv1/Conv/WithoutBiases``,
``.../Relu/fq_output_0`` for NNCF's FakeQuantize in the int8 IR, reorders named
``<parent>_<layout>_<layout>_<child>``); ONNX Runtime's names are node names or output-tensor
names with suffixes (``_nchwc``, ``_token_12``, ``_QuantizeLinear``, ``fused ...``). A name is
tried as it is, then without trailing ``/part`` components, then cut at each ``_`` (longest
prefix first, then longest suffix), against the ONNX node names and tensor names. Nodes the
runtimes create themselves (``ConvolutionBackpropData_2795``, ``ReorderInput_token_7``) have no
ONNX name: they take the stage of their neighbour (OpenVINO: the nearest named producer in the
runtime graph, else consumer; ONNX Runtime: the previous named node in execution order, the next
one for ``ReorderInput``). Whatever is still unresolved is timed as ``other`` and reported, never
dropped. :class:`StageProfile` keeps how much time was mapped by name and by neighbour.

The profiling copy costs one more compile and its memory (the worker reads its steady RSS after
the stages), and profiling adds a little time per node; the figures are a breakdown of the
network, while ``inference`` in the record stays the number of the timed, unprofiled calls.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .base import require_package
from .exported import ExportedGraphRuntime, graph_feeds
from .onnx_export import ExportTarget

# The network's stages in its order; equal to ``benchmark.records.STAGES`` (a test checks it;
# runtimes/ comes before benchmark/ and does not import it).
STAGES = ("backbone+fpn", "rpn", "box_head", "mask_head")
OTHER = "other"  # profiled time whose node could not be placed in a stage
PROFILED_CALL = "profiled_call"  # wall time of the profiled calls, beside their stage sum

# Module scopes in the exported node names (``/backbone/layer1/...``, ``/model/neck/...``):
# the first path component found here gives the stage.
SCOPES = {
    "backbone": "backbone+fpn", "neck": "backbone+fpn",
    "rpn_head": "rpn",
    "bbox_roi_extractor": "box_head", "bbox_head": "box_head",
    "mask_roi_extractor": "mask_head", "mask_head": "mask_head",
}
ROI_POOLING_OPS = ("RoiAlign",)


def scope_stage(name: str) -> str | None:
    """The stage of a node name that carries a module scope, else None."""
    if not name.startswith("/"):
        return None
    for part in name.split("/")[1:-1]:
        if part in SCOPES:
            return SCOPES[part]
    return None


@dataclass
class StageIndex:
    """ONNX node name -> stage and tensor name -> stage (of the node producing it; a graph
    input: of its first consumer), with the lookup of names as runtimes decorate them."""

    by_node: dict[str, str]
    by_tensor: dict[str, str]

    def _exact(self, name: str) -> str | None:
        return self.by_node.get(name) or self.by_tensor.get(name)

    def _path(self, name: str) -> str | None:
        """``name`` or a ``/``-prefix of it (OpenVINO appends ``/WithoutBiases``, ``/fq_output_0``)."""
        while name:
            stage = self._exact(name)
            if stage is not None:
                return stage
            cut = name.rfind("/")
            if cut <= 0:
                return None
            name = name[:cut]
        return None

    def lookup(self, name: str) -> str | None:
        """The stage of a node name as a runtime reports it, or None."""
        name = name.strip()
        if name.startswith("fused "):
            name = name[len("fused "):]
        stage = self._path(name)
        if stage is not None:
            return stage
        cuts = [i for i, char in enumerate(name) if char == "_"]
        for i in reversed(cuts):  # longest prefix first: "/Gather_107_abcd_acdb_..." -> "/Gather_107"
            if i >= 3:
                stage = self._path(name[:i])
                if stage is not None:
                    return stage
        for i in cuts:  # then longest suffix: "..._acdb_abcd_/Gather_68" -> "/Gather_68"
            if len(name) - i - 1 >= 3:
                stage = self._path(name[i + 1:])
                if stage is not None:
                    return stage
        return None


def stage_index(onnx_path: Path | str) -> StageIndex:
    """:func:`node_stages` plus the stage of every tensor (for names derived from tensors)."""
    onnx = require_package("onnx", "graph stages")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    nodes = list(graph.node)
    keys = [_node_key(node, i) for i, node in enumerate(nodes)]
    stages = _assign_stages(nodes, {output.name for output in graph.output})
    by_node = dict(zip(keys, stages))
    by_tensor: dict[str, str] = {}
    for node, stage in zip(nodes, stages):
        for output in node.output:
            if output:
                by_tensor[output] = stage
    for node, stage in zip(nodes, stages):  # graph inputs: the stage of their first consumer
        for name in node.input:
            if name and name not in by_tensor:
                by_tensor[name] = stage
    return StageIndex(by_node, by_tensor)


def node_stages(onnx_path: Path | str) -> dict[str, str]:
    """Every node of the exported graph -> one of :data:`STAGES` (nodes without a name are
    keyed by their first output).

    The rule, in the graph's node order (the tracer's order: the order the Python code ran):

    1. A node whose name carries a module scope takes its stage (:data:`SCOPES`: ``backbone``
       and ``neck`` -> backbone+fpn, ``rpn_head`` -> rpn, ``bbox_head`` -> box_head,
       ``mask_head`` -> mask_head).
    2. A ``RoiAlign`` node takes the stage of the first scoped node it feeds (the box head's or
       the mask head's pooling).
    3. Any other node (the code outside modules: anchors, box decoding, TopK, NMS, the FPN level
       of each RoI, the detection selection, the label gather and sigmoid after the mask head)
       takes the stage of the last node of rules 1-2 before it: proposal selection -> rpn,
       detection selection -> box_head, the tail after the mask head -> mask_head; nodes before
       the first such node (the exporter's leading ``Identity`` copies of shared weights) take
       the stage of their first consumer.
    4. RoI pooling belongs to the head it feeds, including the code that prepares it (RoIs with
       their batch index, each RoI's FPN level): a node of rule 3 whose consumers all lie in one
       head's pooling (nodes after a ``RoiAlign`` of rule 2, before that head, or nodes of this
       rule) joins that head. The proposals themselves also feed the box decoding, so they stay
       in rpn; the detections are also graph outputs, so they stay in box_head.
    """
    return stage_index(onnx_path).by_node


def _node_key(node, index: int) -> str:
    return node.name or (node.output[0] if node.output and node.output[0] else f"#{index}")


def _assign_stages(nodes, graph_outputs: set[str]) -> list[str]:
    count = len(nodes)
    producers: dict[str, int] = {}
    consumers: list[list[int]] = [[] for _ in range(count)]
    for i, node in enumerate(nodes):
        for output in node.output:
            if output:
                producers[output] = i
    for i, node in enumerate(nodes):
        for name in node.input:
            if name in producers:
                consumers[producers[name]].append(i)

    scoped = [scope_stage(node.name) for node in nodes]
    anchors: list[str | None] = list(scoped)
    for i, node in enumerate(nodes):  # rule 2: the first scoped stage downstream of a RoiAlign
        if node.op_type in ROI_POOLING_OPS:
            anchors[i] = _first_scoped_downstream(i, consumers, scoped)
    stages: list[str | None] = [None] * count
    pooling = [False] * count  # rule 4 membership
    current, current_is_pooling = None, False
    for i in range(count):  # rules 1-3
        if anchors[i] is not None:
            current, current_is_pooling = anchors[i], nodes[i].op_type in ROI_POOLING_OPS
            stages[i], pooling[i] = current, current_is_pooling
        elif current is not None:
            stages[i], pooling[i] = current, current_is_pooling
    for i in range(count):  # the leading nodes: their first consumer's stage
        if stages[i] is None:
            later = [stages[j] for j in sorted(consumers[i]) if stages[j] is not None]
            stages[i] = later[0] if later else STAGES[0]
    for i in reversed(range(count)):  # rule 4, consumers before producers
        if anchors[i] is not None or pooling[i] or not consumers[i]:
            continue
        if any(output in graph_outputs for output in nodes[i].output):
            continue
        heads = {stages[j] for j in consumers[i] if pooling[j]}
        if len(heads) == 1 and all(pooling[j] for j in consumers[i]):
            stages[i], pooling[i] = heads.pop(), True
    return [stage or STAGES[0] for stage in stages]


def _first_scoped_downstream(start: int, consumers: list[list[int]], scoped: list[str | None]) -> str | None:
    """The stage of the earliest (in node order) scoped node reachable from ``start``."""
    seen, frontier, found = {start}, [start], []
    while frontier:
        i = frontier.pop()
        for j in consumers[i]:
            if j in seen:
                continue
            seen.add(j)
            if scoped[j] is not None:
                found.append(j)
            else:
                frontier.append(j)
    return scoped[min(found)] if found else None


# --- profiling ------------------------------------------------------------------------------

@dataclass
class StageProfile:
    """Seconds per profiled call: ``stages`` (:data:`STAGES`, plus :data:`OTHER` when some time
    could not be placed) and ``calls`` (each profiled call's wall time); ``seconds_by`` says how
    the profiled node time was placed: by ``name``, by ``neighbour``, or not (``other``)."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    calls: list[float] = field(default_factory=list)
    seconds_by: dict[str, float] = field(default_factory=lambda: {"name": 0.0, "neighbour": 0.0, "other": 0.0})

    def add_call(self, seconds: dict[str, float], wall: float) -> None:
        for stage in (*STAGES, OTHER):
            self.stages.setdefault(stage, [])
        for stage in self.stages:
            self.stages[stage].append(seconds.get(stage, 0.0))
        self.calls.append(wall)

    def stage_sums(self) -> list[float]:
        """Per call, the sum of its stages (``other`` included)."""
        return [sum(values[i] for values in self.stages.values()) for i in range(len(self.calls))]

    def fractions(self) -> dict[str, float]:
        total = sum(self.seconds_by.values())
        return {how: (value / total if total else 0.0) for how, value in self.seconds_by.items()}

    def timings(self) -> dict[str, list[float]]:
        """:data:`STAGES` (:data:`OTHER` only when it got time) and :data:`PROFILED_CALL`."""
        out = {stage: list(self.stages.get(stage, [])) for stage in STAGES}
        if any(self.stages.get(OTHER, [])):
            out[OTHER] = list(self.stages[OTHER])
        out[PROFILED_CALL] = list(self.calls)
        return out


def graph_stage_timings(runtime: ExportedGraphRuntime, images: torch.Tensor | Sequence[torch.Tensor],
                        img_shape: tuple[int, int] | Sequence[tuple[int, int]],
                        repeat: int = 1) -> dict[str, list[float]]:
    """Seconds per stage of each profiled call of ``runtime`` (see the module's docstring):
    :data:`STAGES`, :data:`OTHER` when some time could not be placed, and :data:`PROFILED_CALL`
    (the wall time of those calls, to set the stage sum against). ``images``: one preprocessed
    ``(1, 3, H, W)`` tensor with its ``img_shape``, or a list of them with a list of shapes;
    after one untimed call (per graph), each is profiled ``repeat`` times. ``{}`` for a runtime
    without a profiler here (TensorRT, see :func:`graph_stage_profile`)."""
    profile = graph_stage_profile(runtime, images, img_shape, repeat)
    return profile.timings() if profile is not None else {}


def graph_stage_profile(runtime: ExportedGraphRuntime, images, img_shape, repeat: int = 1) -> StageProfile | None:
    """The :class:`StageProfile` behind :func:`graph_stage_timings`; None for a runtime without
    a profiler here. TensorRT is left out: it was never available where maskbench was developed
    (its runtime is untested), and its ``IProfiler`` reports layers of the built engine, whose
    names TensorRT fuses and renames (``Reformatting CopyNode``, ``{ForeignNode[...]}``) with no
    way to check a mapping here."""
    from .onnxruntime_ import OnnxRuntimeRuntime
    from .openvino_ import OpenVinoRuntime

    inputs = _inputs(images, img_shape)
    if isinstance(runtime, OpenVinoRuntime):
        profiler = _OpenVinoProfiler
    elif isinstance(runtime, OnnxRuntimeRuntime):
        profiler = _OnnxRuntimeProfiler
    else:
        return None
    profile = StageProfile()
    by_target: dict[ExportTarget, list] = {}
    for tensor, shape in inputs:
        by_target.setdefault(ExportTarget.for_input(tensor, shape, runtime.mode), []).append((tensor, shape))
    for target, group in by_target.items():
        if target not in runtime.onnx_paths:  # the worker has prepared it; else export (and quantize) now
            runtime._get(target)
        index = stage_index(runtime.onnx_paths[target])
        artifact = runtime.quantized[target].path if runtime.precision == "int8" else runtime.onnx_paths[target]
        profiler(runtime, artifact, index).profile([graph_feeds(t, s, target) for t, s in group], max(1, repeat), profile)
    return profile


def _inputs(images, img_shape) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    if isinstance(images, torch.Tensor):
        return [(images, (int(img_shape[0]), int(img_shape[1])))]
    images = list(images)
    shapes = [img_shape] * len(images) if isinstance(img_shape[0], (int, np.integer)) else list(img_shape)
    if len(shapes) != len(images):
        raise ValueError(f"{len(images)} images but {len(shapes)} image shapes")
    return [(t, (int(s[0]), int(s[1]))) for t, s in zip(images, shapes)]


class _OpenVinoProfiler:
    def __init__(self, runtime, path: Path, index: StageIndex) -> None:
        from .openvino_ import DEVICE, compile_config

        ov = require_package("openvino", runtime.name)
        core = ov.Core()
        config = {**compile_config(runtime.threads, runtime.precision), "PERF_COUNT": "YES"}
        self.compiled = core.compile_model(core.read_model(str(path)), DEVICE, config)
        self.request = self.compiled.create_infer_request()
        self.index = index
        self.node_stage, self.how = self._runtime_node_stages(index)

    def _runtime_node_stages(self, index: StageIndex) -> tuple[dict[str, str | None], dict[str, str]]:
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
                found = index.lookup(candidate)
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

    def profile(self, feeds_list: list[dict], repeat: int, profile: StageProfile) -> None:
        self.request.infer(feeds_list[0])  # untimed: the first call's allocations
        for _ in range(repeat):
            for feeds in feeds_list:
                t0 = time.perf_counter()
                self.request.infer(feeds)
                wall = time.perf_counter() - t0
                seconds: dict[str, float] = {}
                for info in self.request.get_profiling_info():
                    value = info.real_time.total_seconds()
                    if value <= 0:
                        continue
                    name = info.node_name
                    if name not in self.node_stage:  # not a node of the runtime graph: its name alone
                        self.node_stage[name] = self.index.lookup(name)
                        if self.node_stage[name] is not None:
                            self.how[name] = "name"
                    stage = self.node_stage[name]
                    how = self.how.get(name, "other")
                    seconds[stage or OTHER] = seconds.get(stage or OTHER, 0.0) + value
                    profile.seconds_by[how] += value
                profile.add_call(seconds, wall)


def _nearest(start: int, links: list[list[int | None]], stage: list[str | None]) -> str | None:
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


class _OnnxRuntimeProfiler:
    KERNEL = "_kernel_time"

    def __init__(self, runtime, path: Path, index: StageIndex) -> None:
        ort = require_package("onnxruntime", runtime.name)
        options = runtime.session_options()  # the runtime's own settings, plus profiling
        options.enable_profiling = True
        self.tmp = tempfile.mkdtemp(prefix="maskbench-ort-profile-")
        options.profile_file_prefix = os.path.join(self.tmp, "profile")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=runtime.providers())
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.index = index
        self.stage_of: dict[str, str | None] = {}

    def lookup(self, name: str) -> str | None:
        if name not in self.stage_of:
            self.stage_of[name] = self.index.lookup(name)
        return self.stage_of[name]

    def profile(self, feeds_list: list[dict], repeat: int, profile: StageProfile) -> None:
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
        for (start, end), wall in zip(runs, walls):
            entries = [(e["name"][:-len(self.KERNEL)], e["dur"] * 1e-6) for e in nodes if start <= e["ts"] <= end]
            stages = [self.lookup(name) for name, _ in entries]
            how = ["name" if s is not None else "other" for s in stages]
            for i in range(len(entries)):  # runtime-made nodes: the previous placed node's stage;
                if stages[i] is None:      # a ReorderInput: the next one's (it feeds that node)
                    feeds_next = entries[i][0].startswith("ReorderInput")
                    order = range(i + 1, len(entries)) if feeds_next else range(i - 1, -1, -1)
                    near = next((stages[j] for j in order if how[j] == "name"), None)
                    if near is not None:
                        stages[i], how[i] = near, "neighbour"
            seconds: dict[str, float] = {}
            for (_, value), stage, placed in zip(entries, stages, how):
                seconds[stage or OTHER] = seconds.get(stage or OTHER, 0.0) + value
                profile.seconds_by[placed] += value
            profile.add_call(seconds, wall)

