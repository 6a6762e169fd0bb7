"""The runtimes maskbench knows, what each supports, and building one by name.

Each entry of :data:`RUNTIMES` (a :class:`RuntimeInfo`) names its class by dotted path
(``"maskbench.runtimes.openvino_:OpenVinoRuntime"``), imported only when a runtime of that name is
built (:meth:`RuntimeInfo.load`), and carries its capability checks: the Python packages it
needs, a check of this machine (``needs``: a GPU, a CUDA build) and, per precision, a check the
backend itself provides (``precision_checks``, also by dotted path). Listing the runtimes and
what runs here (``maskbench runtimes``, :func:`available_runtimes`) imports no backend.

To add a runtime: write its module (a :class:`~.base.Runtime` subclass with ``create``) and add
its entry here.

Everything that can be refused (unknown name, device, precision, missing package, no GPU) is
refused in one line by :func:`require_runtime` before any model work, so a benchmark or
``predict`` fails at once; ``get_runtime(name, loaded_model, precision=..., device=...)`` builds one.

Importing this module imports no torch (torch is imported where a device is checked or a runtime
built), so the command line reads the names and capabilities here while it builds its parser.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..utils.errors import MaskbenchError, RuntimeNotInstalled
from ..utils.names import PRECISIONS, ResizeMode
from ..utils.packages import EXTRA_INSTALL, importable, require_package

if TYPE_CHECKING:
    from ..models.factory import LoadedModel
    from .base import Runtime

CPU, CUDA = "cpu", "cuda"
UNTESTED_TENSORRT = "untested: TensorRT was not available where maskbench was developed"


class UnknownRuntimeError(MaskbenchError):
    """A runtime name that is not in :data:`RUNTIMES`."""


class UnsupportedPrecisionError(MaskbenchError):
    """A precision a runtime cannot run on the chosen device; the message says what it can."""


class UnsupportedDeviceError(MaskbenchError):
    """A device a runtime does not run on (e.g. a CPU-only runtime asked for CUDA)."""


def locate(path: str):
    """The object a ``"package.module:attribute"`` path names, its module imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class RuntimeInfo:
    """What the registry knows about a runtime before anything is imported.

    ``target``: its class, ``"module:Class"``; ``precisions``: precision -> device types it runs
    on (``"cpu"``, ``"cuda"``); ``packages``: importable module names it needs; ``install``: the
    command that gets them; ``needs``: an extra check (``None`` if fine, else why not, in one
    line), e.g. a GPU; ``precision_checks``: precision -> ``"module:function"`` that raises (one
    line) where this machine cannot run that precision natively; ``tested_here``: whether it ran
    where maskbench was developed; ``deployable``: a bundle of it runs in :mod:`maskbench.deploy`
    without torch (the runtime's own package and numpy only); ``runs_onnx``: it runs the exported
    ONNX graph (so ``maskbench export --runtime`` prepares its files).
    """

    name: str
    target: str
    packages: tuple[str, ...]
    install: str
    description: str
    precisions: dict[str, tuple[str, ...]] = field(hash=False)
    needs: Callable[[], str | None] | None = field(default=None, hash=False, compare=False)
    precision_checks: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    tested_here: bool = True
    deployable: bool = False
    runs_onnx: bool = False

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(d for d in (CPU, CUDA) if any(d in devs for devs in self.precisions.values()))

    def precisions_text(self) -> str:
        """e.g. ``fp32 (cpu, cuda), fp16 (cuda)``."""
        return ", ".join(f"{p} ({', '.join(devs)})" for p, devs in self.precisions.items())

    def load(self) -> type[Runtime]:
        """The runtime's class (its module imported now)."""
        return locate(self.target)

    def require_package(self, module: str):
        """Import ``module`` for this runtime, or raise :class:`RuntimeNotInstalled` with its
        install command."""
        return require_package(module, self.name, self.install)


def _cuda_problem() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU is visible to PyTorch here"


def _onnxruntime_cuda_problem() -> str | None:
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return (f"this onnxruntime has no CUDAExecutionProvider (it has: {', '.join(providers)}); install the GPU "
                "build with: pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
    return _cuda_problem()


_BOTH = (CPU, CUDA)
RUNTIMES: dict[str, RuntimeInfo] = {
    "torch": RuntimeInfo(
        "torch", "maskbench.runtimes.torch_:TorchRuntime", ("torch",), "pip install torch",
        "eager PyTorch (CUDA when available, else CPU)",
        {"fp32": _BOTH, "fp16": (CUDA,), "bf16": (CPU,)}),
    "torch-compile": RuntimeInfo(
        "torch-compile", "maskbench.runtimes.torch_compile:TorchCompileRuntime", ("torch",), "pip install torch",
        "torch.compile of the dense stages (CUDA: mode reduce-overhead = CUDA graphs); NMS/top-k stay eager",
        {"fp32": _BOTH, "fp16": (CUDA,), "bf16": (CPU,)}),
    "onnxruntime": RuntimeInfo(
        "onnxruntime", "maskbench.runtimes.onnxruntime_:OnnxRuntimeRuntime", ("onnx", "onnxruntime"),
        f"{EXTRA_INSTALL}  (or: pip install onnx onnxruntime)",
        "ONNX Runtime, CPUExecutionProvider, on the exported ONNX graph (int8: static QDQ quantization)",
        {"fp32": (CPU,), "int8": (CPU,)},
        precision_checks={"int8": "maskbench.runtimes.onnxruntime_:require_int8_instructions"}, deployable=True,
        runs_onnx=True),
    "onnxruntime-cuda": RuntimeInfo(
        "onnxruntime-cuda", "maskbench.runtimes.onnxruntime_:OnnxRuntimeCudaRuntime", ("onnx", "onnxruntime"),
        "pip install onnx onnxruntime-gpu",
        "ONNX Runtime, CUDAExecutionProvider, on the same exported ONNX graph", {"fp32": (CUDA,)},
        needs=_onnxruntime_cuda_problem, runs_onnx=True),
    "openvino": RuntimeInfo(
        "openvino", "maskbench.runtimes.openvino_:OpenVinoRuntime", ("onnx", "openvino"),
        f"{EXTRA_INSTALL}  (or: pip install onnx openvino)",
        "OpenVINO on CPU (precision hint f32, or bf16 where the CPU has it; int8: NNCF post-training "
        "quantization), on the exported ONNX graph", {"fp32": (CPU,), "bf16": (CPU,), "int8": (CPU,)},
        precision_checks={"bf16": "maskbench.runtimes.openvino_:require_native_bf16",
                          "int8": "maskbench.runtimes.openvino_:require_native_int8"}, deployable=True,
        runs_onnx=True),
    "tensorrt": RuntimeInfo(
        "tensorrt", "maskbench.runtimes.tensorrt_:TensorRTRuntime", ("onnx", "tensorrt"),
        "pip install onnx tensorrt  (TensorRT 10, from NVIDIA's index)",
        f"native TensorRT engine built from the exported ONNX graph ({UNTESTED_TENSORRT})",
        {"fp32": (CUDA,), "fp16": (CUDA,)}, needs=_cuda_problem, tested_here=False, runs_onnx=True),
}


def deployable_runtimes() -> tuple[str, ...]:
    """The runtimes a bundle can be exported for and deployed with (no torch at the robot)."""
    return tuple(name for name, info in RUNTIMES.items() if info.deployable)


def export_targets() -> tuple[str, ...]:
    """What ``maskbench export --runtime`` prepares: ``onnx`` (the file alone) or a runtime of it."""
    return ("onnx", *(name for name, info in RUNTIMES.items() if info.runs_onnx))


def runtime_info(name: str) -> RuntimeInfo:
    """The entry of ``name``; :class:`UnknownRuntimeError` (one line) if there is none."""
    info = RUNTIMES.get(name)
    if info is None:
        raise UnknownRuntimeError(f"unknown runtime '{name}'; choose one of: {', '.join(RUNTIMES)}")
    return info


def runtime_problem(name: str) -> str | None:
    """Why ``name`` cannot run here (one line), or ``None`` if it can."""
    info = RUNTIMES[name]
    missing = [m for m in info.packages if not importable(m)]
    if missing:
        return f"needs the Python package(s) {', '.join(missing)}; install with: {info.install}"
    return info.needs() if info.needs else None


def available_runtimes() -> list[str]:
    """Names in :data:`RUNTIMES` that can run here (packages installed, GPU present if needed)."""
    return [name for name in RUNTIMES if runtime_problem(name) is None]


def resolve_device(name: str, device: str | None) -> str:
    """The device ``name`` runs on: ``device`` if it can, CUDA when it is the runtime's only
    device or (``device=None``) when available, else the CPU."""
    import torch

    info = RUNTIMES[name]
    if device is None:
        if CUDA in info.devices and (CPU not in info.devices or torch.cuda.is_available()):
            return "cuda:0"
        return CPU
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise UnsupportedDeviceError(f"unknown device '{device}'; use 'cpu', 'cuda' or 'cuda:N'") from None
    if kind not in info.devices:
        if info.devices == (CPU,):
            raise UnsupportedDeviceError(f"runtime '{name}' runs on the CPU only; leave --device out or use 'cpu'")
        others = [n for n, i in RUNTIMES.items() if kind in i.devices]
        raise UnsupportedDeviceError(f"runtime '{name}' runs on {', '.join(info.devices)} only, not '{device}'; "
                                     f"for {kind} use: {', '.join(others)}")
    return str(torch.device("cuda:0" if device == CUDA else device))


def check_precision(name: str, precision: str, device: str) -> None:
    """Raise :class:`UnsupportedPrecisionError` (one line: what is supported, what to use
    instead) unless runtime ``name`` runs ``precision`` on ``device``."""
    import torch

    info = RUNTIMES[name]
    kind = torch.device(device).type
    if precision not in PRECISIONS:
        raise UnsupportedPrecisionError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if kind in info.precisions.get(precision, ()):
        return
    here = [p for p, devs in info.precisions.items() if kind in devs]
    elsewhere = [n for n, i in RUNTIMES.items() if kind in i.precisions.get(precision, ())]
    advice = [f"--precision {' or '.join(here)} with '{name}'"] if here else []
    advice += [f"{precision} on {kind} with: {', '.join(elsewhere)}"] if elsewhere else []
    if not elsewhere and precision == "fp16" and kind == CPU:
        advice.append("fp16 needs a CUDA device (on the CPU use bf16)")
    raise UnsupportedPrecisionError(
        f"runtime '{name}' cannot run {precision} on {kind}: it supports {info.precisions_text()}; "
        f"use {'; or '.join(advice) or 'another runtime'}")


def require_runtime(name: str, precision: str = "fp32", device: str | None = None) -> RuntimeInfo:
    """Check, before any model is loaded, that ``name`` is known, runs ``precision`` on
    ``device`` and can run here; otherwise raise a one-line :class:`MaskbenchError`."""
    info = runtime_info(name)
    check_precision(name, precision, resolve_device(name, device))
    for module in info.packages:
        info.require_package(module)
    problem = info.needs() if info.needs else None
    if problem:
        raise RuntimeNotInstalled(f"runtime '{name}' cannot run here: {problem}")
    if precision in info.precision_checks:
        locate(info.precision_checks[precision])()
    return info


def get_runtime(
    name: str,
    loaded: LoadedModel,
    *,
    mode: ResizeMode | str = ResizeMode.STRETCH,
    device: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    cache_dir=None,
    calibration_images=None,
) -> Runtime:
    """A runtime for ``loaded``.

    ``mode``: the preprocessing its inputs come from (stretch: the resized shape is baked into an
    exported graph; keep-ratio: it is a graph input); ``device``: ``None`` = the runtime's GPU
    when it has one and CUDA is available, else the CPU; ``threads``: CPU threads (ONNX Runtime's
    and OpenVINO's intra-op threads; torch's process-wide ``set_num_threads`` for the torch
    runtimes; default ``torch.get_num_threads()``); ``precision``: ``fp32`` (default),
    ``fp16``, ``bf16`` or ``int8`` where :data:`RUNTIMES` lists it; ``cache_dir``: where exported
    files, engines and int8 artifacts are cached (default
    :func:`~maskbench.export.onnx_export.export_cache_dir`); ``calibration_images``: RGB uint8
    frames (list of HxWx3 arrays) that int8 quantization measures activation ranges on, default
    the embedded nuScenes frames; they are preprocessed exactly as the runtime's inputs.
    """
    info = require_runtime(name, precision, device)
    return info.load().create(loaded, mode=ResizeMode(mode), device=resolve_device(name, device), threads=threads,
                              precision=precision, cache_dir=cache_dir, calibration_images=calibration_images)
