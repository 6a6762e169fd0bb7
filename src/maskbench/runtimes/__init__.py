"""Runtimes: eager PyTorch (and torch.compile), and the exported ONNX graph on ONNX Runtime (CPU,
CUDA), OpenVINO and TensorRT, behind one interface (:class:`Runtime`) returning the eager
network's raw output (``models.detector.RawDetections``), in the precisions each supports
(``maskbench runtimes``).

The registry (:mod:`.registry`) names every backend by dotted path, so listing the runtimes
imports no backend module. The names below are imported on first use: importing a submodule
that needs no torch (``maskbench.runtimes.cli``, which builds the ``maskbench`` parser) does not
load torch."""

from importlib import import_module

_WHERE = {
    "PRECISIONS": ".base",
    "Runtime": ".base",
    "UnknownRuntimeError": ".registry",
    "UnsupportedDeviceError": ".registry",
    "UnsupportedPrecisionError": ".registry",
    "RUNTIMES": ".registry",
    "RuntimeInfo": ".registry",
    "available_runtimes": ".registry",
    "get_runtime": ".registry",
    "require_runtime": ".registry",
    "RuntimeNotInstalled": "..utils.errors",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module 'maskbench.runtimes' has no attribute {name!r}")
