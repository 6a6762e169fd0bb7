"""Eager PyTorch: the reference every other runtime is compared with."""

from __future__ import annotations

import copy

import torch

from ..models.factory import LoadedModel
from ..models.mask_rcnn import RawDetections
from .base import Runtime


class TorchRuntime(Runtime):
    """``MaskRCNN.forward`` on one image, fp32. ``device``: ``None`` = CUDA when available, else
    CPU. On a GPU the runtime works on its own copy of the model (the caller's stays on the CPU);
    outputs stay on the device (``postprocess.to_detections`` moves them)."""

    name = "torch"
    precision = "fp32"

    def __init__(self, loaded: LoadedModel, device: str | None = None) -> None:
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = str(torch.device(device))
        self.loaded = loaded
        model = loaded.model
        current = next(model.parameters()).device
        self.model = model if current == torch.device(self.device) else copy.deepcopy(model).to(self.device)
        self.model.eval()

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> RawDetections:
        _check_batch(images)
        return self.model(images.to(self.device), [tuple(img_shape)])[0]


def _check_batch(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[0] != 1 or images.shape[1] != 3:
        raise ValueError(f"a runtime takes one image as (1, 3, H, W), got {tuple(images.shape)}")
