"""Optional Python packages (ONNX, the runtimes): whether one is importable, and importing one
with a one-line error that gives the pip command. A leaf: it imports no other maskbench module
but :mod:`.errors`, so the export, the runtime registry and every backend can use it."""

from __future__ import annotations

import importlib
import importlib.util
import sys

from .errors import RuntimeNotInstalled

EXTRA_INSTALL = "pip install 'maskbench[runtimes]'"


def importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: blocked (how tests simulate a missing package)
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_package(module: str, runtime: str | None = None, install: str | None = None):
    """Import ``module`` or raise :class:`RuntimeNotInstalled` with the pip command.

    ``runtime``: who needs it (``None``: the ONNX export); ``install``: that runtime's install
    command (:attr:`~maskbench.runtimes.registry.RuntimeInfo.install`), which says whether the
    package comes with the ``runtimes`` extra; ``None``: it does."""
    try:
        return importlib.import_module(module)
    except ImportError:
        who = f"runtime '{runtime}'" if runtime else "ONNX export"
        pip_name = "onnxruntime-gpu" if (module, runtime) == ("onnxruntime", "onnxruntime-cuda") else module
        in_extra = install is None or EXTRA_INSTALL in install
        hint = f"{EXTRA_INSTALL}  (or: pip install {pip_name})" if in_extra else f"pip install {pip_name}"
        raise RuntimeNotInstalled(
            f"{who} needs the Python package '{module}', which is not installed; install it with: {hint}"
        ) from None
