"""One interface for every way of running a model: eager PyTorch, ONNX Runtime, OpenVINO...

A :class:`Runtime` takes exactly what the eager network takes for one image and returns the
same :class:`~maskbench.models.mask_rcnn.RawDetections` (boxes in resized-image pixels, scores,
labels, (D, 28, 28) mask probabilities), so ``postprocess.to_detections`` and
``compare.compare_detections`` work unchanged on any runtime's output.

Runtimes are named in :data:`RUNTIMES`; ``get_runtime(name, loaded_model, ...)`` builds one and
says in one line how to install what is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..errors import MaskbenchError
from ..models.factory import LoadedModel
from ..models.mask_rcnn import RawDetections
from ..preprocess import ResizeMode

EXTRA_INSTALL = "pip install 'maskbench[runtimes]'"


class RuntimeNotInstalled(MaskbenchError):
    """A runtime whose Python package is not installed; the message has the pip command."""


class UnknownRuntimeError(MaskbenchError):
    """A runtime name that is not in :data:`RUNTIMES`."""


class Runtime(ABC):
    """Runs one model on one image at a time.

    ``name``: the registry name; ``precision``: ``"fp32"`` (later ``"fp16"``/``"int8"``);
    ``device``: ``"cpu"``, ``"cuda:0"``...
    """

    name: str = "?"
    precision: str = "fp32"
    device: str = "cpu"

    @abstractmethod
    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        """``images``: (1, 3, H, W) float32, normalised and padded as ``preprocess`` gives it;
        ``img_shape``: the resized image's (h, w) inside the padding."""

    def prepare(self, images: torch.Tensor, img_shape: tuple[int, int]) -> None:
        """Do once what the first call on such an input would (export, compile), so that
        latency measured afterwards is the steady state. Default: nothing to do."""

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device})"

    def __repr__(self) -> str:
        return f"<Runtime {self.describe()}>"


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    packages: tuple[str, ...]  # importable module names it needs
    pip: str  # the packages' pip names, for the install hint
    description: str


RUNTIMES: dict[str, RuntimeInfo] = {
    "torch": RuntimeInfo("torch", ("torch",), "torch", "eager PyTorch, fp32 (CUDA when available, else CPU)"),
    "onnxruntime": RuntimeInfo("onnxruntime", ("onnx", "onnxruntime"), "onnx onnxruntime",
                               "ONNX Runtime, CPUExecutionProvider, fp32, on the exported ONNX graph"),
    "openvino": RuntimeInfo("openvino", ("onnx", "openvino"), "onnx openvino",
                            "OpenVINO on CPU, fp32 (precision hint f32), on the exported ONNX graph"),
    # Next (GPU): "onnxruntime-cuda" (CUDAExecutionProvider on the same ONNX file) and "tensorrt"
    # (an engine built from the same ONNX file, fp32/fp16). Add them here and in _build().
}


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: blocked (how tests simulate a missing package)
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_package(module: str, runtime: str | None = None):
    """Import ``module`` or raise :class:`RuntimeNotInstalled` with the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pip_name = {"onnx": "onnx", "onnxruntime": "onnxruntime", "openvino": "openvino"}.get(module, module)
        who = f"runtime '{runtime}'" if runtime else "ONNX export"
        raise RuntimeNotInstalled(
            f"{who} needs the Python package '{pip_name}', which is not installed; "
            f"install it with: {EXTRA_INSTALL}  (or: pip install {pip_name})"
        ) from None


def available_runtimes() -> list[str]:
    """Names in :data:`RUNTIMES` whose packages are installed here."""
    return [name for name, info in RUNTIMES.items() if all(_importable(m) for m in info.packages)]


def require_runtime(name: str) -> RuntimeInfo:
    """Check that ``name`` is a known runtime whose packages are installed (before any model is
    loaded, so a missing package is reported at once)."""
    info = RUNTIMES.get(name)
    if info is None:
        raise UnknownRuntimeError(f"unknown runtime '{name}'; choose one of: {', '.join(RUNTIMES)}")
    for module in info.packages:
        require_package(module, name)
    return info


def get_runtime(
    name: str,
    loaded: LoadedModel,
    *,
    mode: ResizeMode | str = ResizeMode.STRETCH,
    device: str | None = None,
    threads: int | None = None,
    cache_dir=None,
) -> Runtime:
    """A runtime for ``loaded``.

    ``mode``: the preprocessing its inputs come from (stretch: the resized shape is baked into an
    exported graph; keep-ratio: it is a graph input); ``threads``: intra-op threads of ONNX
    Runtime / OpenVINO (default ``torch.get_num_threads()``); ``cache_dir``: where exported
    files are cached (default :func:`~maskbench.runtimes.onnx_export.export_cache_dir`).
    """
    require_runtime(name)
    mode = ResizeMode(mode)
    if name == "torch":
        from .torch_ import TorchRuntime

        return TorchRuntime(loaded, device=device)
    if device not in (None, "cpu"):
        raise MaskbenchError(f"runtime '{name}' runs on the CPU only for now; leave --device out or use 'cpu'")
    if name == "onnxruntime":
        from .onnxruntime_ import OnnxRuntimeRuntime

        return OnnxRuntimeRuntime(loaded, mode=mode, threads=threads, cache_dir=cache_dir)
    if name == "openvino":
        from .openvino_ import OpenVinoRuntime

        return OpenVinoRuntime(loaded, mode=mode, threads=threads, cache_dir=cache_dir)
    raise UnknownRuntimeError(f"runtime '{name}' is listed but not built here")  # pragma: no cover
