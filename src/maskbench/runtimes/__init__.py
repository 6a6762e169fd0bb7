"""Runtimes: eager PyTorch (and torch.compile), and the exported ONNX graph on ONNX Runtime (CPU,
CUDA), OpenVINO and TensorRT, behind one interface (:class:`Runtime`) returning the eager
network's :class:`RawDetections`, in the precisions each supports (``maskbench runtimes``).

The names below come from :mod:`.base` on first use, so importing a submodule that needs no
torch (``maskbench.runtimes.cli``, which builds the ``maskbench`` parser) does not load torch."""

_FROM_BASE = (
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
)

__all__ = list(_FROM_BASE)


def __getattr__(name: str):
    if name in _FROM_BASE:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module 'maskbench.runtimes' has no attribute {name!r}")
