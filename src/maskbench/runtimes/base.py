"""One interface for every way of running a model: eager PyTorch, ONNX Runtime, OpenVINO...

A :class:`Runtime` takes exactly what the eager network takes for one image and returns the
same :class:`~maskbench.models.mask_rcnn.RawDetections` (boxes in resized-image pixels, scores,
labels, (D, 28, 28) mask probabilities, all float32/int64 whatever the precision it computes
in), so ``postprocess.to_detections`` and ``compare.compare_detections`` work unchanged on any
runtime's output.

Runtimes are named in :data:`RUNTIMES` with the precisions they support on each device;
``get_runtime(name, loaded_model, precision=..., device=...)`` builds one. Everything that can
be refused (unknown name, device, precision, missing package, no GPU) is refused in one line by
:func:`require_runtime` before any model work, so a benchmark or ``predict`` fails at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import MaskbenchError
from ..models.factory import LoadedModel
from ..models.mask_rcnn import RawDetections
from ..names import PRECISIONS  # in names.py: the command line reads it without torch
from ..preprocess import ResizeMode

EXTRA_INSTALL = "pip install 'maskbench[runtimes]'"
CPU, CUDA = "cpu", "cuda"
UNTESTED_TENSORRT = "untested: TensorRT was not available where maskbench was developed"


class RuntimeNotInstalled(MaskbenchError):
    """A runtime whose Python package (or GPU) is missing; the message says how to get it."""


class UnknownRuntimeError(MaskbenchError):
    """A runtime name that is not in :data:`RUNTIMES`."""


class UnsupportedPrecisionError(MaskbenchError):
    """A precision a runtime cannot run on the chosen device; the message says what it can."""


class UnsupportedDeviceError(MaskbenchError):
    """A device a runtime does not run on (e.g. a CPU-only runtime asked for CUDA)."""


class Runtime(ABC):
    """Runs one model on one image at a time.

    ``name``: the registry name; ``precision``: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"int8"``
    (what the network computes in; outputs are always float32); ``device``: ``"cpu"``, ``"cuda:0"``...
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
    """What the registry knows about a runtime before anything is imported.

    ``precisions``: precision -> device types it runs on (``"cpu"``, ``"cuda"``);
    ``packages``: importable module names it needs; ``install``: the command that gets them;
    ``needs``: an extra check (``None`` if fine, else why not, in one line), e.g. a GPU;
    ``tested_here``: whether it ran where maskbench was developed.
    """

    name: str
    packages: tuple[str, ...]
    install: str
    description: str
    precisions: dict[str, tuple[str, ...]] = field(hash=False)
    needs: Callable[[], str | None] | None = field(default=None, hash=False, compare=False)
    tested_here: bool = True

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(d for d in (CPU, CUDA) if any(d in devs for devs in self.precisions.values()))

    def precisions_text(self) -> str:
        """e.g. ``fp32 (cpu, cuda), fp16 (cuda)``."""
        return ", ".join(f"{p} ({', '.join(devs)})" for p, devs in self.precisions.items())


def _cuda_problem() -> str | None:
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
        "torch", ("torch",), "pip install torch", "eager PyTorch (CUDA when available, else CPU)",
        {"fp32": _BOTH, "fp16": (CUDA,), "bf16": (CPU,)}),
    "torch-compile": RuntimeInfo(
        "torch-compile", ("torch",), "pip install torch",
        "torch.compile of the dense stages (CUDA: mode reduce-overhead = CUDA graphs); NMS/top-k stay eager",
        {"fp32": _BOTH, "fp16": (CUDA,), "bf16": (CPU,)}),
    "onnxruntime": RuntimeInfo(
        "onnxruntime", ("onnx", "onnxruntime"), f"{EXTRA_INSTALL}  (or: pip install onnx onnxruntime)",
        "ONNX Runtime, CPUExecutionProvider, on the exported ONNX graph (int8: static QDQ quantization)",
        {"fp32": (CPU,), "int8": (CPU,)}),
    "onnxruntime-cuda": RuntimeInfo(
        "onnxruntime-cuda", ("onnx", "onnxruntime"), "pip install onnx onnxruntime-gpu",
        "ONNX Runtime, CUDAExecutionProvider, on the same exported ONNX graph", {"fp32": (CUDA,)},
        needs=_onnxruntime_cuda_problem),
    "openvino": RuntimeInfo(
        "openvino", ("onnx", "openvino"), f"{EXTRA_INSTALL}  (or: pip install onnx openvino)",
        "OpenVINO on CPU (precision hint f32, or bf16 where the CPU has it; int8: NNCF post-training "
        "quantization), on the exported ONNX graph", {"fp32": (CPU,), "bf16": (CPU,), "int8": (CPU,)}),
    "tensorrt": RuntimeInfo(
        "tensorrt", ("onnx", "tensorrt"), "pip install onnx tensorrt  (TensorRT 10, from NVIDIA's index)",
        f"native TensorRT engine built from the exported ONNX graph ({UNTESTED_TENSORRT})",
        {"fp32": (CUDA,), "fp16": (CUDA,)}, needs=_cuda_problem, tested_here=False),
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
        who = f"runtime '{runtime}'" if runtime else "ONNX export"
        pip_name = "onnxruntime-gpu" if (module, runtime) == ("onnxruntime", "onnxruntime-cuda") else module
        info = RUNTIMES.get(runtime) if runtime else None
        in_extra = info is None or EXTRA_INSTALL in info.install
        hint = f"{EXTRA_INSTALL}  (or: pip install {pip_name})" if in_extra else f"pip install {pip_name}"
        raise RuntimeNotInstalled(
            f"{who} needs the Python package '{module}', which is not installed; install it with: {hint}"
        ) from None


def runtime_problem(name: str) -> str | None:
    """Why ``name`` cannot run here (one line), or ``None`` if it can."""
    info = RUNTIMES[name]
    missing = [m for m in info.packages if not _importable(m)]
    if missing:
        return f"needs the Python package(s) {', '.join(missing)}; install with: {info.install}"
    return info.needs() if info.needs else None


def available_runtimes() -> list[str]:
    """Names in :data:`RUNTIMES` that can run here (packages installed, GPU present if needed)."""
    return [name for name in RUNTIMES if runtime_problem(name) is None]


def resolve_device(name: str, device: str | None) -> str:
    """The device ``name`` runs on: ``device`` if it can, CUDA when it is the runtime's only
    device or (``device=None``) when available, else the CPU."""
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
    info = RUNTIMES.get(name)
    if info is None:
        raise UnknownRuntimeError(f"unknown runtime '{name}'; choose one of: {', '.join(RUNTIMES)}")
    check_precision(name, precision, resolve_device(name, device))
    for module in info.packages:
        require_package(module, name)
    problem = info.needs() if info.needs else None
    if problem:
        raise RuntimeNotInstalled(f"runtime '{name}' cannot run here: {problem}")
    if name == "openvino" and precision == "bf16":
        from .openvino_ import require_native_bf16

        require_native_bf16()
    if name == "openvino" and precision == "int8":
        from .openvino_ import require_native_int8

        require_native_int8()
    if name == "onnxruntime" and precision == "int8":
        from .onnxruntime_ import require_int8_instructions

        require_int8_instructions()
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
    :func:`~maskbench.runtimes.onnx_export.export_cache_dir`); ``calibration_images``: RGB uint8
    frames (list of HxWx3 arrays) that int8 quantization measures activation ranges on, default
    the embedded nuScenes frames; they are preprocessed exactly as the runtime's inputs.
    """
    require_runtime(name, precision, device)
    device = resolve_device(name, device)
    mode = ResizeMode(mode)
    if name in ("torch", "torch-compile"):
        # PyTorch's intra-op pool is per process: the torch runtimes honour ``threads`` by
        # setting it (it also drives preprocessing), and report what they run with.
        if threads:
            torch.set_num_threads(int(threads))
        if name == "torch":
            from .torch_ import TorchRuntime

            runtime = TorchRuntime(loaded, device=device, precision=precision)
        else:
            from .torch_compile import TorchCompileRuntime

            runtime = TorchCompileRuntime(loaded, device=device, precision=precision)
        runtime.threads = torch.get_num_threads()
        return runtime
    graph_args = dict(mode=mode, threads=threads, cache_dir=cache_dir, precision=precision, device=device,
                      calibration_images=calibration_images)
    if name == "onnxruntime":
        from .onnxruntime_ import OnnxRuntimeRuntime

        return OnnxRuntimeRuntime(loaded, **graph_args)
    if name == "onnxruntime-cuda":
        from .onnxruntime_ import OnnxRuntimeCudaRuntime

        return OnnxRuntimeCudaRuntime(loaded, **graph_args)
    if name == "openvino":
        from .openvino_ import OpenVinoRuntime

        return OpenVinoRuntime(loaded, **graph_args)
    if name == "tensorrt":
        from .tensorrt_ import TensorRTRuntime

        return TensorRTRuntime(loaded, **graph_args)
    raise UnknownRuntimeError(f"runtime '{name}' is listed but not built here")  # pragma: no cover
