"""The graph runtimes as deploy runs them: ONNX Runtime or OpenVINO on the artifact, imported
directly (no torch), with the benchmark's session settings (:mod:`maskbench.pipeline.graph_sessions`).

A runtime whose major.minor version differs from the one the bundle was exported and measured
with is refused: another version may fuse or round differently, and the measured latency and
fidelity in the manifest would no longer describe what runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..pipeline.graph_sessions import (
    OPENVINO_DEVICE,
    compile_config,
    missing_native_precision,
    ort_session_options,
)
from ..pipeline.manifest import BundleError
from ..utils.errors import RuntimeNotInstalled

MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}  # runtime -> Python package
Engine = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, ...]]


def deploy_install(runtime: str, version: str | None = None) -> str:
    pinned = f"=={major_minor(version)}.*" if version else ""
    return f'pip install "maskbench[deploy]" "{MODULES[runtime]}{pinned}"'


def import_runtime(runtime: str, version: str | None = None):
    """The runtime's package, or one line naming the pip command."""
    if runtime not in MODULES:
        raise BundleError(f"runtime '{runtime}' is not deployable without torch here (deploy runs "
                          f"{', '.join(MODULES)}); export the bundle for one of those")
    try:
        return importlib.import_module(MODULES[runtime])
    except ImportError:
        raise RuntimeNotInstalled(f"the bundle runs on '{runtime}', whose Python package is not installed; "
                                  f"install it with: {deploy_install(runtime, version)}") from None


def installed_version(module) -> str:
    return str(getattr(module, "__version__", None) or module.get_version())


def major_minor(version: str) -> str:
    return ".".join(str(version).split("+")[0].split(".")[:2])


def check_version(runtime: str, installed: str, expected: str) -> None:
    if major_minor(installed) != major_minor(expected):
        raise BundleError(f"the bundle was exported with {runtime} {expected}, this environment has {installed}; "
                          f"re-export the bundle here, or install the bundle's version: "
                          f"{deploy_install(runtime, expected)}")


class OpenVinoEngine:
    """An OpenVINO compiled model as an engine (one infer request); ``compiled`` serves callers
    that run it their own way (the rig's asynchronous queue)."""

    def __init__(self, compiled, output_names: Sequence[str]) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.outputs = [compiled.output(name) for name in output_names]

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        self.request.infer(feeds)
        return tuple(self.request.get_tensor(output).data.copy() for output in self.outputs)


def open_engine(runtime: str, version: str, path: Path, threads: int, precision: str,
                output_names: Sequence[str], openvino_config: dict[str, str] | None = None) -> Engine:
    """``engine(feeds) -> outputs`` (in ``output_names`` order, copied) for the file ``path``;
    ``openvino_config``: OpenVINO's compile config instead of the benchmark's (the rig's streams)."""
    module = import_runtime(runtime, version)
    check_version(runtime, installed_version(module), version)
    if runtime == "onnxruntime":
        session = module.InferenceSession(str(path), sess_options=ort_session_options(module, threads),
                                          providers=["CPUExecutionProvider"])
        names = list(output_names)
        return lambda feeds: tuple(session.run(names, feeds))
    core = module.Core()
    reason = missing_native_precision([str(c) for c in core.get_property(OPENVINO_DEVICE, "OPTIMIZATION_CAPABILITIES")],
                                      precision)
    if reason:  # the manifest's latency and fidelity were measured in this precision: not silently f32 here
        raise BundleError(f"{path.parent}: the bundle runs in {precision}, but {reason}; export an fp32 bundle "
                          "for this machine")
    config = openvino_config if openvino_config is not None else compile_config(threads, precision)
    return OpenVinoEngine(core.compile_model(core.read_model(str(path)), OPENVINO_DEVICE, config), output_names)
