"""Runtimes: eager PyTorch and the exported ONNX graph on ONNX Runtime and OpenVINO, behind one
interface (:class:`Runtime`) returning the eager network's :class:`RawDetections`."""

from .base import (
    RUNTIMES,
    Runtime,
    RuntimeInfo,
    RuntimeNotInstalled,
    UnknownRuntimeError,
    available_runtimes,
    get_runtime,
)

__all__ = [
    "RUNTIMES",
    "Runtime",
    "RuntimeInfo",
    "RuntimeNotInstalled",
    "UnknownRuntimeError",
    "available_runtimes",
    "get_runtime",
]
