"""Runtimes: eager PyTorch (and torch.compile), and the exported ONNX graph on ONNX Runtime (CPU,
CUDA), OpenVINO and TensorRT, behind one interface (:class:`Runtime`) returning the eager
network's :class:`RawDetections`, in the precisions each supports (``maskbench runtimes``).

The registry (:mod:`.registry`) names every backend by dotted path: importing this package, or
listing the runtimes, imports no backend module."""

from ..errors import RuntimeNotInstalled
from .base import (
    PRECISIONS,
    Runtime,
    UnknownRuntimeError,
    UnsupportedDeviceError,
    UnsupportedPrecisionError,
)
from .registry import RUNTIMES, RuntimeInfo, available_runtimes, get_runtime, require_runtime

__all__ = [
    "PRECISIONS",
    "RUNTIMES",
    "Runtime",
    "RuntimeInfo",
    "RuntimeNotInstalled",
    "UnknownRuntimeError",
    "UnsupportedDeviceError",
    "UnsupportedPrecisionError",
    "available_runtimes",
    "get_runtime",
    "require_runtime",
]
