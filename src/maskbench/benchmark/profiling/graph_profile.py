"""Per-stage times of the runtimes that run the exported graph as one call (OpenVINO, ONNX Runtime).

The eager runtimes are timed stage by stage by calling the model's methods one after the other
(``benchmark/worker.py``). A graph runtime runs the whole network in one call, so its stages come
from the runtime's own per-node profiler instead (:meth:`~maskbench.runtimes.base.Runtime.node_profiler`),
on a second copy of the graph compiled with the same settings (threads, precision, the int8
artifact) plus profiling: OpenVINO's ``PERF_COUNT``, ONNX Runtime's session profiling (see
:mod:`maskbench.runtimes.openvino_`, :mod:`maskbench.runtimes.onnxruntime_`).

Each profiled node's time goes to the network stage of its ONNX node (:mod:`.node_stages`), so a
call's stage times add up to the time the runtime's nodes ran, not to the call's wall time
(``profiled_call``, reported beside them): less by the runtime's own overhead between nodes, or,
with OpenVINO, up to ~6 % more (its nodes' times overlap: docs/benchmark.md). Nodes
the runtimes create themselves take the stage of their neighbour; whatever is still unresolved
is timed as ``other`` and reported, never dropped. :class:`StageProfile` keeps how much time was
mapped by name and by neighbour.

The profiling copy costs one more compile and its memory (the worker reads its steady RSS after
the stages), and profiling adds a little time per node; the figures are a breakdown of the
network, while ``inference`` in the record stays the number of the timed, unprofiled calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ...export.onnx_export import ExportTarget, graph_feeds
from ...pipeline.graph_io import graph_family
from ...runtimes.base import Runtime
from .node_stages import stage_index

OTHER = "other"  # profiled time whose node could not be placed in a stage
PROFILED_CALL = "profiled_call"  # wall time of the profiled calls, beside their stage sum


@dataclass
class StageProfile:
    """Seconds per profiled call: ``stages`` (the graph's family's stages, plus :data:`OTHER` when some time
    could not be placed) and ``calls`` (each profiled call's wall time); ``seconds_by`` says how
    the profiled node time was placed: by ``name``, by ``neighbour``, or not (``other``)."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    calls: list[float] = field(default_factory=list)
    names: tuple[str, ...] = ()  # the graph's own stages (its family's), in the network's order
    seconds_by: dict[str, float] = field(default_factory=lambda: {"name": 0.0, "neighbour": 0.0, "other": 0.0})

    def add_call(self, seconds: dict[str, float], wall: float) -> None:
        for stage in (*self.names, OTHER):
            self.stages.setdefault(stage, [])
        for stage in self.stages:
            self.stages[stage].append(seconds.get(stage, 0.0))
        self.calls.append(wall)

    def add_nodes(self, entries: Sequence[tuple[str | None, str, float]], wall: float) -> None:
        """One profiled call from its nodes: ``(stage or None, how it was placed, seconds)``."""
        seconds: dict[str, float] = {}
        for stage, how, value in entries:
            seconds[stage or OTHER] = seconds.get(stage or OTHER, 0.0) + value
            self.seconds_by[how] += value
        self.add_call(seconds, wall)

    def stage_sums(self) -> list[float]:
        """Per call, the sum of its stages (``other`` included)."""
        return [sum(values[i] for values in self.stages.values()) for i in range(len(self.calls))]

    def fractions(self) -> dict[str, float]:
        total = sum(self.seconds_by.values())
        return {how: (value / total if total else 0.0) for how, value in self.seconds_by.items()}

    def timings(self) -> dict[str, list[float]]:
        """The family's stages (:data:`OTHER` only when it got time) and :data:`PROFILED_CALL`."""
        out = {stage: list(self.stages.get(stage, [])) for stage in self.names}
        if any(self.stages.get(OTHER, [])):
            out[OTHER] = list(self.stages[OTHER])
        out[PROFILED_CALL] = list(self.calls)
        return out


def graph_stage_timings(runtime: Runtime, images: torch.Tensor | Sequence[torch.Tensor],
                        img_shape: tuple[int, int] | Sequence[tuple[int, int]],
                        repeat: int = 1) -> dict[str, list[float]]:
    """Seconds per stage of each profiled call of ``runtime`` (see the module's docstring):
    its family's stages, :data:`OTHER` when some time could not be placed, and :data:`PROFILED_CALL`
    (the wall time of those calls, to set the stage sum against). ``images``: one preprocessed
    ``(1, 3, H, W)`` tensor with its ``img_shape``, or a list of them with a list of shapes;
    after one untimed call (per graph), each is profiled ``repeat`` times. ``{}`` for a runtime
    without a node profiler (see :func:`graph_stage_profile`)."""
    profile = graph_stage_profile(runtime, images, img_shape, repeat)
    return profile.timings() if profile is not None else {}


def graph_stage_profile(runtime: Runtime, images, img_shape, repeat: int = 1) -> StageProfile | None:
    """The :class:`StageProfile` behind :func:`graph_stage_timings`; None for a runtime without
    a node profiler (eager runtimes, TensorRT). TensorRT is left out: it was never available
    where maskbench was developed (its runtime is untested), and its ``IProfiler`` reports
    layers of the built engine, whose names TensorRT fuses and renames (``Reformatting
    CopyNode``, ``{ForeignNode[...]}``) with no way to check a mapping here."""
    profile = StageProfile()
    by_target: dict[ExportTarget, list] = {}
    for tensor, shape in _inputs(images, img_shape):
        target = runtime.graph_target(tensor, shape)
        if target is None:  # no exported graph
            return None
        by_target.setdefault(target, []).append((tensor, shape))
    for target, group in by_target.items():
        profiler = runtime.node_profiler(target)  # the worker has prepared it; else export (and quantize) now
        if profiler is None:
            return None
        index = stage_index(profiler.onnx_path)
        present = set(index.by_node.values())
        profile.names = tuple(stage for stage in graph_family(profiler.onnx_path).stage_names if stage in present)
        feeds = [graph_feeds(t, s, target) for t, s in group]
        for entries, wall in profiler.profile(feeds, max(1, repeat), index.lookup):
            profile.add_nodes(entries, wall)
    return profile


def _inputs(images, img_shape) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    if isinstance(images, torch.Tensor):
        return [(images, (int(img_shape[0]), int(img_shape[1])))]
    images = list(images)
    shapes = [img_shape] * len(images) if isinstance(img_shape[0], (int, np.integer)) else list(img_shape)
    if len(shapes) != len(images):
        raise ValueError(f"{len(images)} images but {len(shapes)} image shapes")
    return [(t, (int(s[0]), int(s[1]))) for t, s in zip(images, shapes)]
