"""Eager PyTorch: the reference every other runtime is compared with, in fp32, fp16 or bf16.

Reduced precision applies to the network's dense stages only (the model's ``dense_stages()``:
Mask R-CNN's backbone + FPN, RPN head convolutions, box head FCs, mask head convolutions;
RTMDet-Ins' backbone + neck and head convolutions). Box decoding, NMS, top-k, RoIAlign and
RTMDet's per-instance mask convolutions stay in float32, on float32 copies of the stage outputs:
in fp16 a box coordinate above 1024 px has 1-px steps (bf16: 8-px steps), and the class-aware
NMS shifts boxes by ``class * (max coordinate + 1)``, up to ~110,000 at 1344x800, past fp16's
largest value (65,504). So "fp16" measures what the network's arithmetic does to the answers,
not an fp16 NMS that could not work.

- fp16 (CUDA only): the dense modules are converted to half; inputs are cast to half.
- bf16 (CPU): the dense stages run under ``torch.autocast("cpu", torch.bfloat16)`` (weights stay
  fp32; oneDNN runs convolutions and matmuls in bf16, natively where the CPU has AVX512-BF16
  or AMX, emulated and slow elsewhere).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch

from ..models.detector import Detector, RawDetections
from ..models.factory import LoadedModel
from .base import Runtime, check_batch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def wrap_dense_stages(model: Detector, wrap: Callable[[Callable], Callable]) -> None:
    """Replace every dense stage ``f`` of ``model`` (a private copy: this changes it) by ``wrap(f)``."""
    for owner, attribute in model.dense_stages():
        setattr(owner, attribute, wrap(getattr(owner, attribute)))


def cast_floats(value, dtype: torch.dtype):
    """``value`` (a tensor, or lists/tuples of them) with floating tensors cast to ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(cast_floats(v, dtype) for v in value)
    return value


def in_precision(stage: Callable, precision: str, device_type: str) -> Callable:
    """``stage`` computing in ``precision``, taking and returning float32 tensors."""
    dtype = DTYPES[precision]

    @functools.wraps(stage)
    def run(*args):
        if precision == "bf16":
            with torch.autocast(device_type, dtype=dtype):
                out = stage(*args)
        else:
            out = stage(*cast_floats(args, dtype))
        return cast_floats(out, torch.float32)

    return run


def model_for(model: Detector, device: str, precision: str, private: bool = False) -> Detector:
    """``model`` on ``device`` in ``precision``: the caller's own model when nothing changes
    (fp32 on its device, not ``private``), else a copy (the caller's model is never altered)."""
    current = next(model.parameters()).device
    if precision == "fp32" and not private and current == torch.device(device):
        return model.eval()
    copied = copy.deepcopy(model).to(device).eval()
    if precision == "fp16":
        for module in copied.dense_modules():
            module.half()
    if precision != "fp32":
        wrap_dense_stages(copied, lambda stage: in_precision(stage, precision, torch.device(device).type))
    return copied


class TorchRuntime(Runtime):
    """The model's ``forward`` on one image. ``device``: ``None`` = CUDA when available, else CPU.
    On a GPU, or in fp16/bf16, the runtime works on its own copy of the model (the caller's
    stays as it is); outputs are float32 and stay on the device (``postprocess`` moves them)."""

    name = "torch"
    private_model = False  # True: always work on a copy (subclasses that change the model's stages)

    def __init__(self, loaded: LoadedModel, device: str | None = None, precision: str = "fp32") -> None:
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = str(torch.device(device))
        self.precision = precision
        self.loaded = loaded
        self.model = model_for(loaded.model, self.device, precision, private=self.private_model)

    @classmethod
    def create(cls, loaded: LoadedModel, *, mode, device, threads, precision, cache_dir,
               calibration_images) -> TorchRuntime:
        # PyTorch's intra-op pool is per process: the torch runtimes honour ``threads`` by
        # setting it (it also drives preprocessing), and report what they run with.
        if threads:
            torch.set_num_threads(int(threads))
        runtime = cls(loaded, device=device, precision=precision)
        runtime.threads = torch.get_num_threads()
        return runtime

    def describe(self) -> str:
        note = ", emulated: no native bf16 on this CPU" if self.precision == "bf16" and not native_cpu_bf16() else ""
        return f"{self.name} ({self.precision}{note}, {self.device})"

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        self._begin_step()
        check_batch(images)
        return self.model(images.to(self.device), [tuple(img_shape)])[0]

    def _begin_step(self) -> None:
        """Before each call of the model's stages: nothing here (see :mod:`.torch_compile`)."""

    def feature_tap(self):
        """The runtime's own ``model.extract_features``: its private copy wrapped in bf16
        autocast or cast to fp16 (and compiled, for ``torch-compile``); outputs cast to float32."""

        def tap(images: torch.Tensor, img_shape: tuple[int, int]) -> list:
            self._begin_step()
            with torch.inference_mode():
                features = self.model.extract_features(images.to(self.device))
            return [f.float().cpu().numpy() for f in features]

        return tap

    def stage_model(self) -> Detector:
        return self.model


def native_cpu_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); else it emulates, slowly."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
