"""Runtimes: eager PyTorch (and torch.compile), and the exported ONNX graph on ONNX Runtime (CPU,
CUDA), OpenVINO and TensorRT, behind one interface (:class:`Runtime`) returning the eager
network's :class:`RawDetections`, in the precisions each supports (``maskbench runtimes``)."""

from .base import (
    PRECISIONS,
    RUNTIMES,
    Runtime,
    RuntimeInfo,
    RuntimeNotInstalled,
    UnknownRuntimeError,
    UnsupportedDeviceError,
    UnsupportedPrecisionError,
    available_runtimes,
    get_runtime,
    require_runtime,
)

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
