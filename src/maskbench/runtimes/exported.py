"""Common part of the runtimes that run the exported ONNX graph (ONNX Runtime on CPU or CUDA,
OpenVINO, TensorRT).

A graph is specialised for a static input size (see :mod:`.onnx_export`); the runtime exports
(or takes from the cache) and compiles one graph per input size it meets, on first use. The
ONNX file is always fp32: a reduced precision is the runtime's own setting when it compiles the
graph (OpenVINO's precision hint, TensorRT's FP16 flag), so all precisions share one export.
int8 is the exception that proves it: the fp32 file is quantized (:mod:`.quantize`) on
calibration frames into an artifact cached beside it, and that artifact is what is compiled.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..models.factory import LoadedModel
from ..models.mask_rcnn import RawDetections
from ..preprocess import ResizeMode
from .base import Runtime
from .calibration import calibration_feeds, feeds_fingerprint
from .onnx_export import ExportTarget, export_onnx
from .quantize import QuantizedArtifact, Quantizer, quantized_artifact
from .torch_ import _check_batch


class ExportedGraphRuntime(Runtime):
    """``calibration_images``: RGB uint8 frames int8 quantization measures activation ranges on
    (``None``: the embedded nuScenes frames); ignored by the other precisions."""

    def __init__(self, loaded: LoadedModel, mode: ResizeMode = ResizeMode.STRETCH, threads: int | None = None,
                 cache_dir: Path | None = None, precision: str = "fp32", device: str = "cpu",
                 calibration_images: Sequence[np.ndarray] | None = None) -> None:
        self.loaded = loaded
        self.precision = precision
        self.device = device
        self.mode = ResizeMode(mode)
        self.threads = int(threads) if threads else torch.get_num_threads()
        self.cache_dir = cache_dir
        self._compiled: dict[ExportTarget, object] = {}
        self.onnx_paths: dict[ExportTarget, Path] = {}
        self.calibration_images = calibration_images
        self.quantized: dict[ExportTarget, QuantizedArtifact] = {}  # int8 only

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device}, {self.threads} threads)"

    def prepare(self, images: torch.Tensor, img_shape: tuple[int, int]) -> None:
        self._get(ExportTarget.for_input(images, img_shape, self.mode))

    def _get(self, target: ExportTarget):
        if target not in self._compiled:
            path = export_onnx(self.loaded, target, cache_dir=self.cache_dir)
            self.onnx_paths[target] = path
            if self.precision == "int8":
                self.quantized[target] = self._quantize(path, target)
                path = self.quantized[target].path
            self._compiled[target] = self._compile(path)
        return self._compiled[target]

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        _check_batch(images)
        target = ExportTarget.for_input(images, img_shape, self.mode)
        compiled = self._get(target)
        boxes, scores, labels, mask_probs = self._run(compiled, graph_feeds(images, img_shape, target))
        return RawDetections(
            boxes=torch.from_numpy(np.array(boxes, dtype=np.float32, copy=True)),
            scores=torch.from_numpy(np.array(scores, dtype=np.float32, copy=True)),
            labels=torch.from_numpy(np.array(labels, dtype=np.int64, copy=True)),
            mask_probs=torch.from_numpy(np.array(mask_probs, dtype=np.float32, copy=True)),
        )

    def _quantize(self, path: Path, target: ExportTarget) -> QuantizedArtifact:
        """The int8 artifact of ``path``, quantized on the calibration frames preprocessed for
        ``target`` (from the cache when its key matches)."""
        spec = self.loaded.spec
        feeds = calibration_feeds(self.calibration_images, target, spec.pixel_mean, spec.pixel_std)
        return quantized_artifact(self._quantizer(), path, feeds, feeds_fingerprint(feeds))

    def _quantizer(self) -> Quantizer:
        raise NotImplementedError(f"{self.name} has no int8 quantizer")

    @abstractmethod
    def _compile(self, path: Path):
        """Load the ONNX file into this runtime. ONNX Runtime and OpenVINO also take
        ``extra_outputs`` (tensor names made graph outputs: :mod:`.features`' taps)."""

    @abstractmethod
    def _run(self, compiled, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Outputs in the order boxes, scores, labels, mask_probs."""


def graph_feeds(images: torch.Tensor, img_shape: tuple[int, int], target: ExportTarget) -> dict[str, np.ndarray]:
    """The exported graph's inputs: ``images`` float32, plus ``img_shape`` int64 ``[h, w]`` for a
    keep-ratio graph (a stretch graph has it baked in)."""
    feeds = {"images": np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)}
    if target.img_shape is None:
        feeds["img_shape"] = np.asarray([int(img_shape[0]), int(img_shape[1])], dtype=np.int64)
    return feeds
