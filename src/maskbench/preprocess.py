"""Resize, normalise and pad an image the way MMDetection's test pipeline does.

Two modes, both from the study's world:
- ``keep_ratio``: MMDetection's default (``Resize(scale=(1333, 800), keep_ratio=True)``): the
  largest size fitting 1333 on the long edge and 800 on the short one, then zero-padding (after
  normalisation) to a multiple of 32.
- ``stretch``: a fixed input such as 1344x800, ignoring the aspect ratio, as a static
  TensorRT/MMDeploy build does (the study's setting).
Resizing uses OpenCV's bilinear filter on uint8, exactly as mmcv does, so the network sees the
same pixels as in MMDetection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import torch

from .names import KEEP_RATIO_SCALE, STUDY_INPUT_SIZE, ResizeMode  # in names.py: the CLI reads them without torch

PAD_DIVISOR = 32


@dataclass(frozen=True)
class ImageMeta:
    """Shapes are (height, width); ``scale_factor`` is (w_scale, h_scale) = resized / original."""

    ori_shape: tuple[int, int]
    img_shape: tuple[int, int]
    pad_shape: tuple[int, int]
    scale_factor: tuple[float, float]


def resized_size(height: int, width: int, mode: ResizeMode, size: tuple[int, int]) -> tuple[int, int]:
    """(new_w, new_h). ``size`` is (w, h) for stretch, (long, short) edge limits for keep_ratio."""
    if mode == ResizeMode.STRETCH:
        return size
    long_edge, short_edge = max(size), min(size)
    scale = min(long_edge / max(height, width), short_edge / min(height, width))
    # mmdet's Resize inherits mmcv's _resize_img, i.e. mmcv.imrescale, which rounds: 1600x900
    # becomes 1333x750 (measured with MMDetection 3.3 itself). The truncating mmdet.imrescale
    # beside it serves only FixScaleResize.
    return int(width * float(scale) + 0.5), int(height * float(scale) + 0.5)


def preprocess(
    image: np.ndarray,
    mode: ResizeMode = ResizeMode.STRETCH,
    size: tuple[int, int] | None = None,
    mean: Sequence[float] = (123.675, 116.28, 103.53),
    std: Sequence[float] = (58.395, 57.12, 57.375),
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, ImageMeta]:
    """RGB uint8 HxWx3 -> normalised (1, 3, H', W') tensor padded to /32, and its meta.

    ``dtype`` float64 normalises in double, as MMDetection's data preprocessor does once its
    model is in double (the parity check, docs/parity.md)."""
    mode = ResizeMode(mode)
    size = size or (STUDY_INPUT_SIZE if mode == ResizeMode.STRETCH else KEEP_RATIO_SCALE)
    height, width = image.shape[:2]
    new_w, new_h = resized_size(height, width, mode, size)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_h = -new_h % PAD_DIVISOR
    pad_w = -new_w % PAD_DIVISOR
    tensor = normalise_into_padded(resized, mean, std, (new_h + pad_h, new_w + pad_w), dtype)
    meta = ImageMeta(
        ori_shape=(height, width),
        img_shape=(new_h, new_w),
        pad_shape=(new_h + pad_h, new_w + pad_w),
        scale_factor=(new_w / width, new_h / height),
    )
    return tensor, meta


def normalise_into_padded(resized: np.ndarray, mean: Sequence[float], std: Sequence[float],
                          padded_hw: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, 3, H, W) ``dtype``: ``(pixel - mean) / std`` per channel, zero padding right and below.

    Subtraction then division in ``dtype`` (float32 or float64), as MMDetection's data preprocessor computes it
    (the same IEEE operations, so the same bits). In numpy, one channel at a time, straight into the
    padded output: no torch thread pool to wake (its threads otherwise compete with a graph
    runtime's still-spinning ones: measured 10-44 ms per 1344x800 frame beside OpenVINO, vs 5-9
    ms alone; now 10-14 ms beside it: ``tools/mmdet_vs_maskbench.py --time-one``), and the output lives on an
    anonymous mapping whose padding is already zero and
    which asks for no transparent huge pages (see :mod:`maskbench.postprocess`).
    """
    import mmap

    height, width = resized.shape[:2]
    np_dtype = cast("type[np.floating]", {torch.float32: np.float32, torch.float64: np.float64}[dtype])
    itemsize = np.dtype(np_dtype).itemsize
    out = np.frombuffer(mmap.mmap(-1, 3 * padded_hw[0] * padded_hw[1] * itemsize), dtype=np_dtype)
    out = out.reshape(1, 3, *padded_hw)
    for channel in range(3):
        plane = out[0, channel, :height, :width]
        # mean/std are float32 values even in double: MMDetection's buffers hold them so
        channel_mean, channel_std = np_dtype(np.float32(mean[channel])), np_dtype(np.float32(std[channel]))
        np.subtract(resized[:, :, channel], channel_mean, out=plane, dtype=np_dtype)
        np.divide(plane, channel_std, out=plane)
    return torch.from_numpy(out)
