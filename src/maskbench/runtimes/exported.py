"""Common part of the runtimes that run the exported ONNX graph (ONNX Runtime on CPU or CUDA,
OpenVINO, TensorRT).

A graph is specialised for a static input size (see :mod:`maskbench.export.onnx_export`); the
runtime exports (or takes from the cache) and compiles one graph per input size it meets, on
first use. The ONNX file is always fp32: a reduced precision is the runtime's own setting when
it compiles the graph (OpenVINO's precision hint, TensorRT's FP16 flag), so all precisions share
one export. int8 is the exception that proves it: the fp32 file is quantized
(:mod:`maskbench.export.quantize`) on calibration frames into an artifact cached beside it, and
that artifact is what is compiled.

Each backend compiles a file (``_compile(path, extra_outputs=())``) and runs it
(``_run(compiled, feeds, names)``); the rest is common: the feature tap (the same file compiled
a second time with the FPN tensors as extra outputs, :class:`GraphTap`), the files on disk, and
whether the eager model may be freed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..export.calibration import calibration_feeds, feeds_fingerprint
from ..export.onnx_export import ExportTarget, export_onnx, graph_feeds, output_names, raw_from_outputs
from ..export.quantize import QuantizedArtifact, Quantizer, quantized_artifact
from ..models.detector import RawDetections
from ..models.factory import LoadedModel
from ..pipeline.preprocess import ResizeMode
from ..utils.errors import MaskbenchError
from .base import FeatureTapUnavailable, Runtime, check_batch
from .feature_names import feature_tensor_names
from .registry import RUNTIMES


class ExportedGraphRuntime(Runtime):
    """``calibration_images``: RGB uint8 frames int8 quantization measures activation ranges on
    (``None``: the embedded nuScenes frames); ignored by the other precisions."""

    threads: int  # always set here (default: torch's thread count)

    def __init__(self, loaded: LoadedModel, mode: ResizeMode = ResizeMode.STRETCH, threads: int | None = None,
                 cache_dir: Path | None = None, precision: str = "fp32", device: str = "cpu",
                 calibration_images: Sequence[np.ndarray] | None = None) -> None:
        self.loaded = loaded
        self.precision = precision
        self.device = device
        self.mode = ResizeMode(mode)
        self.threads = int(threads) if threads else torch.get_num_threads()
        self.cache_dir = cache_dir
        self._compiled: dict[ExportTarget, Any] = {}  # each runtime's compiled graph
        self.onnx_paths: dict[ExportTarget, Path] = {}
        self.calibration_images = calibration_images
        self.quantized: dict[ExportTarget, QuantizedArtifact] = {}  # int8 only

    @classmethod
    def create(cls, loaded: LoadedModel, *, mode, device, threads, precision, cache_dir,
               calibration_images) -> ExportedGraphRuntime:
        return cls(loaded, mode=mode, threads=threads, cache_dir=cache_dir, precision=precision, device=device,
                   calibration_images=calibration_images)

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device}, {self.threads} threads)"

    def prepare(self, images: torch.Tensor, img_shape: tuple[int, int]) -> None:
        self._get(self.graph_target(images, img_shape))

    def _get(self, target: ExportTarget):
        if target not in self._compiled:
            path = export_onnx(self.loaded, target, cache_dir=self.cache_dir)
            self.onnx_paths[target] = path
            if self.precision == "int8":
                self.quantized[target] = self._quantize(path, target)
                path = self.quantized[target].path
            self._compiled[target] = self._compile(path)
        return self._compiled[target]

    def graph_target(self, images: torch.Tensor, img_shape: tuple[int, int]) -> ExportTarget:
        return ExportTarget.for_input(images, img_shape, self.mode)

    def graph_files(self, target: ExportTarget) -> tuple[Path, Path]:
        """(the fp32 ONNX export, the file this runtime compiles: that export, or its int8
        artifact) for ``target``; exported (and quantized) now unless already prepared."""
        self._get(target)
        onnx_path = self.onnx_paths[target]
        return onnx_path, (self.quantized[target].path if self.precision == "int8" else onnx_path)

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        check_batch(images)
        target = self.graph_target(images, img_shape)
        compiled = self._get(target)
        spec = self.loaded.spec
        return raw_from_outputs(spec, self._run(compiled, graph_feeds(images, img_shape, target), output_names(spec)))

    def _quantize(self, path: Path, target: ExportTarget) -> QuantizedArtifact:
        """The int8 artifact of ``path``, quantized on the calibration frames preprocessed for
        ``target`` (from the cache when its key matches)."""
        spec = self.loaded.spec
        feeds = calibration_feeds(self.calibration_images, target, spec.input_format)
        return quantized_artifact(self._quantizer(), path, feeds, feeds_fingerprint(feeds))

    def _quantizer(self) -> Quantizer:
        raise NotImplementedError(f"{self.name} has no int8 quantizer")

    def require(self, module: str):
        """Import ``module`` for this runtime, or raise one line with its install command."""
        return RUNTIMES[self.name].require_package(module)

    @abstractmethod
    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        """Load the ONNX file into this runtime; ``extra_outputs``: tensor names also made graph
        outputs (a :class:`GraphTap`'s)."""

    @abstractmethod
    def _run(self, compiled, feeds: dict[str, np.ndarray],
             names: Sequence[str]) -> tuple[np.ndarray, ...]:
        """The outputs ``names``, in that order (``output_names(spec)`` for a detection)."""

    def _missing_outputs(self, path: Path, names: Sequence[str]) -> list[str]:
        """Which of ``names`` are not tensors of the graph at ``path`` (default: none known
        before compiling; an unknown name then fails the compilation)."""
        return []

    def _compile_tap(self, path: Path, names: Sequence[str], label: str):
        missing = self._missing_outputs(path, names)
        if missing:
            raise FeatureTapUnavailable(f"{path}: the {label} tensor(s) {', '.join(missing)} are not in this graph")
        try:
            return self._compile(path, extra_outputs=names)
        except RuntimeError as err:  # OpenVINO: an unknown tensor name
            raise FeatureTapUnavailable(f"{path}: cannot add the {label} outputs: {str(err).splitlines()[0]}") from None

    # --- what a graph runtime can do besides running ---------------------------------------

    def tensor_tap(self, names: Sequence[str] | Callable[[Path], Sequence[str]], label: str = "FPN") -> GraphTap:
        """Tensors of the exported graph as this runtime computes them (:class:`GraphTap`);
        ``names``: their names, or a function of the fp32 export's path that gives them."""
        return GraphTap(self, names, label)

    def feature_tap(self) -> GraphTap:
        """The FPN outputs (found by name in the fp32 export, :func:`.feature_names.fpn_tensor_names`;
        the int8 artifacts keep those names)."""
        return self.tensor_tap(feature_tensor_names)

    def artifact_files(self) -> list[Path]:
        quantized = [path for artifact in self.quantized.values() for path in artifact.files]
        return quantized or list(self.onnx_paths.values())

    def artifact_lines(self) -> list[str]:
        lines = []
        for artifact in self.quantized.values():
            state = "quantized now" if artifact.built else "from the cache"
            lines.append(f"int8 ({state}, {artifact.key['calibration_frames']} calibration frame(s)): "
                         f"{', '.join(str(f) for f in artifact.files)} (+ .json, its key)")
        return lines

    def needs_eager_model(self) -> bool:
        return False


class GraphTap:
    """``tap(images (1,3,H,W), img_shape) -> [values]`` (float32 NumPy): tensors of the exported
    graph as ``runtime`` computes them, in its precision.

    The very file the runtime compiles (the fp32 export, or the int8 artifact for int8) is
    compiled a second time by the runtime's own ``_compile`` (same threads, precision hint,
    providers) with the tensors added as graph outputs, once per input size, on first use. An
    extra output can stop a runtime from fusing its producer with the consumer (int8: ONNX
    Runtime's ``QLinearConv`` needs its output internal), so an int8 tap reads a convolution's
    output before it is rounded again for the next layer: the error of the layers that made it.
    """

    def __init__(self, runtime: ExportedGraphRuntime, names: Sequence[str] | Callable[[Path], Sequence[str]],
                 label: str = "FPN") -> None:
        self.runtime = runtime
        self.names = names if callable(names) else (lambda _path, fixed=tuple(names): fixed)
        self.label = label
        self._compiled: dict = {}  # ExportTarget -> (compiled graph, tensor names)

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> list[np.ndarray]:
        runtime = self.runtime
        target = runtime.graph_target(images, img_shape)
        if target not in self._compiled:
            onnx_path, path = runtime.graph_files(target)  # exported (and quantized) exactly as the runtime does
            names = list(self.names(onnx_path))
            self._compiled[target] = (runtime._compile_tap(path, names, self.label), names)
        compiled, names = self._compiled[target]
        values = runtime._run(compiled, graph_feeds(images, img_shape, target), names)
        return [np.asarray(v, dtype=np.float32) for v in values]


def bundle_runtime(runtime: Runtime) -> ExportedGraphRuntime:
    """``runtime`` if it runs an exported graph, the file a deployment bundle ships; else one line
    naming the runtimes that do (``export --bundle`` and ``recommend --bundle``)."""
    if not isinstance(runtime, ExportedGraphRuntime):
        raise MaskbenchError(f"runtime '{runtime.name}' runs no exported graph: a bundle needs onnxruntime or "
                             "openvino (export with one of them, or pick among jobs benchmarked on them)")
    return runtime
