"""One interface for every way of running a model: eager PyTorch, ONNX Runtime, OpenVINO...

A :class:`Runtime` takes exactly what the eager network takes for one image and returns the
same raw output as the eager model (``RawDetections``: boxes in resized-image
pixels, scores, labels, the family's masks, all float32/int64 whatever the precision it
computes in), so ``postprocess.to_detections`` and ``compare.compare_detections`` work unchanged on any
runtime's output.

What a runtime can do beyond that is its own method, with a default here for those that cannot:
its files on disk (:meth:`Runtime.artifact_files`), its FPN features for fidelity
(:meth:`Runtime.feature_tap`), how its stages are timed (:meth:`Runtime.stage_model`,
:meth:`Runtime.node_profiler`) and whether it still needs the caller's eager model
(:meth:`Runtime.needs_eager_model`). Nothing outside the backends asks a runtime its class or
name to decide what it can do.

This module imports no backend (the registry, :mod:`.registry`, names them by dotted path).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch

from ..export.onnx_export import ExportTarget
from ..models.detector import Detector, RawDetections
from ..models.factory import LoadedModel
from ..pipeline.preprocess import ResizeMode
from ..utils.errors import MaskbenchError
from ..utils.names import PRECISIONS  # noqa: F401 (re-exported as base.PRECISIONS; defined in names.py: the command line reads it without torch)


class FeatureTapUnavailable(MaskbenchError):
    """The runtime cannot hand out its FPN features (TensorRT, or a graph without them)."""


def check_batch(images: torch.Tensor) -> None:
    """Refuse anything but one image as (1, 3, H, W)."""
    if images.dim() != 4 or images.shape[0] != 1 or images.shape[1] != 3:
        raise ValueError(f"a runtime takes one image as (1, 3, H, W), got {tuple(images.shape)}")


class Runtime(ABC):
    """Runs one model on one image at a time.

    ``name``: the registry name; ``precision``: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"int8"``
    (what the network computes in; outputs are always float32); ``device``: ``"cpu"``, ``"cuda:0"``...
    """

    name: str = "?"
    precision: str = "fp32"
    device: str = "cpu"
    threads: int | None = None  # CPU threads it runs with, where it sets them

    @classmethod
    @abstractmethod
    def create(cls, loaded: LoadedModel, *, mode: ResizeMode, device: str, threads: int | None, precision: str,
               cache_dir: Path | None, calibration_images) -> Runtime:
        """Build one from :func:`~.registry.get_runtime`'s arguments (already checked); each
        runtime takes those that apply to it."""

    @abstractmethod
    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        """``images``: (1, 3, H, W) float32, normalised and padded as ``preprocess`` gives it;
        ``img_shape``: the resized image's (h, w) inside the padding."""

    def prepare(self, images: torch.Tensor, img_shape: tuple[int, int]) -> None:  # noqa: B027 (optional hook)
        """Do once what the first call on such an input would (export, compile), so that
        latency measured afterwards is the steady state. Default: nothing to do."""

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device})"

    def __repr__(self) -> str:
        return f"<Runtime {self.describe()}>"

    # --- what a runtime can do besides running: defaults for one that cannot ----------------

    def feature_tap(self):
        """``tap(images (1,3,H,W), img_shape) -> [P2..P6]`` (float32 NumPy): the five FPN outputs
        as this runtime computes them, in its precision. Raises :class:`FeatureTapUnavailable`
        (one line) where there is none."""
        raise FeatureTapUnavailable(f"feature taps are not available for runtime '{self.name}'")

    def graph_target(self, images: torch.Tensor, img_shape: tuple[int, int]) -> ExportTarget | None:
        """The exported graph this runtime runs for such an input; ``None`` for a runtime that
        runs no exported graph."""
        return None

    def stage_model(self) -> Detector | None:
        """The eager model this runtime runs, whose stage methods (``extract_features``,
        ``propose``, ``detect_boxes``, ``predict_masks``) time its stages one by one; ``None``
        for a runtime that runs the network as one call."""
        return None

    def node_profiler(self, target: ExportTarget):
        """A profiler of this runtime's graph nodes for ``target`` (see :meth:`graph_target`; a
        second compilation of the graph with the runtime's settings plus profiling), or ``None``
        where there is none. It has ``onnx_path`` (the fp32 export whose node names it reports) and
        ``profile(feeds_list, repeat, lookup) -> [(entries, wall seconds)]`` per profiled call,
        ``entries`` being ``(stage or None, how it was placed, seconds)`` per node, ``lookup``
        the stage of a node name (see :mod:`maskbench.benchmark.profiling`)."""
        return None

    def artifact_files(self) -> list[Path]:
        """The files on disk this runtime loads (exported graph, int8 artifact, engine); empty
        for a runtime that runs the eager model."""
        return []

    def artifact_lines(self) -> list[str]:
        """One line per file it built besides the ONNX export (engines, int8 artifacts), as
        ``maskbench export`` prints them."""
        return []

    def needs_eager_model(self) -> bool:
        """Whether the caller's eager model must stay in memory while this runtime runs
        (``False``: it compiled its own copy of the weights)."""
        return True
