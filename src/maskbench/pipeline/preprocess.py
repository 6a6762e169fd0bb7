"""Resize, normalise and pad an image the way MMDetection's test pipeline does.

Two modes, both from the study's world:
- ``keep_ratio``: MMDetection's default (Mask R-CNN: ``Resize(scale=(1333, 800),
  keep_ratio=True)``): the largest size fitting 1333 on the long edge and 800 on the short one,
  then zero-padding (after normalisation) to a multiple of 32. RTMDet-Ins: fit in 640x640, then
  ``Pad(size=(640, 640))`` with raw value 114, normalised like the pixels.
- ``stretch``: a fixed input such as 1344x800 (RTMDet: 640x640), ignoring the aspect ratio, as a
  static TensorRT/MMDeploy build does (the study's setting).
Resizing uses OpenCV's bilinear filter on uint8, exactly as mmcv does, so the network sees the
same pixels as in MMDetection; RF-DETR-Seg's float image is resized with PyTorch's arithmetic
(:mod:`.bilinear`), as rfdetr does.

No torch here: :func:`preprocess_array` (numpy and OpenCV) is what the torch-free deployment
(:mod:`maskbench.deploy`) runs; :func:`maskbench.models.inputs.preprocess` wraps its output in a
tensor, so both paths feed the network the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.errors import MaskbenchError
from ..utils.names import ResizeMode  # in names.py: the CLI reads it without torch
from ..zoo import MASK_RCNN_INPUT, InputFormat
from .bilinear import resize_image


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


def preprocess_array(
    image: np.ndarray,
    mode: ResizeMode = ResizeMode.STRETCH,
    input_size: tuple[int, int] | None = None,
    input_format: InputFormat = MASK_RCNN_INPUT,
    dtype: type[np.floating] = np.float32,
) -> tuple[np.ndarray, ImageMeta]:
    """:func:`preprocess` in numpy: the (1, 3, H', W') ``dtype`` array and its meta."""
    mode = ResizeMode(mode)
    if mode == ResizeMode.KEEP_RATIO and not input_format.keep_ratio:
        raise MaskbenchError("this model takes its square stretched input only (no keep-ratio mode); "
                             "leave --keep-ratio out")
    default = input_format.stretch_size if mode == ResizeMode.STRETCH else input_format.keep_ratio_scale
    input_size = input_size or default
    height, width = image.shape[:2]
    new_w, new_h = resized_size(height, width, mode, input_size)
    if input_format.pixel_divisor is None:
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    else:  # RF-DETR-Seg: x / 255 in float, resized as PyTorch resizes a float tensor
        scaled = np.divide(image, dtype(input_format.pixel_divisor), dtype=dtype)
        resized = resize_image(scaled, (new_h, new_w))
    if input_format.bgr:
        resized = resized[:, :, ::-1]
    # RTMDet's pipeline pads to its scale (mmcv's ``Pad``), which also sets ``img_shape`` to the
    # padded size: MMDetection's head then clamps boxes to the padded input, not the resized image.
    padded_in_pipeline = mode == ResizeMode.KEEP_RATIO and input_format.pad_to_scale
    padded_w, padded_h = (max(input_size), min(input_size)) if padded_in_pipeline else (new_w, new_h)
    divisor = input_format.pad_divisor
    padded_h, padded_w = padded_h + -padded_h % divisor, padded_w + -padded_w % divisor
    array = normalise_into_padded(resized, input_format.mean, input_format.std, (padded_h, padded_w), dtype,
                                  input_format.pad_value, mmdet_constants=input_format.pixel_divisor is None)
    meta = ImageMeta(
        ori_shape=(height, width),
        img_shape=(padded_h, padded_w) if padded_in_pipeline else (new_h, new_w),
        pad_shape=(padded_h, padded_w),
        scale_factor=(new_w / width, new_h / height),
    )
    return array, meta


def normalise_into_padded(resized: np.ndarray, mean: Sequence[float], std: Sequence[float],
                          padded_hw: tuple[int, int], dtype: type[np.floating] = np.float32,
                          pad_value: float | None = None, mmdet_constants: bool = True) -> np.ndarray:
    """(1, 3, H, W) ``dtype``: ``(pixel - mean) / std`` per channel, padding right and below:
    zeros, or ``pad_value`` normalised like a pixel (RTMDet pads the raw image with 114 first).

    Subtraction then division in ``dtype`` (float32 or float64), as MMDetection's data preprocessor computes it
    (the same IEEE operations, so the same bits). In numpy, one channel at a time, straight into the
    padded output: no torch thread pool to wake (its threads otherwise compete with a graph
    runtime's still-spinning ones: measured 10-44 ms per 1344x800 frame beside OpenVINO, vs 5-9
    ms alone; now 10-14 ms beside it: ``tools/mmdet_vs_maskbench.py --time-one``), and the output lives on an
    anonymous mapping whose padding is already zero and
    which asks for no transparent huge pages (see :mod:`maskbench.pipeline.postprocess`).
    """
    import mmap

    height, width = resized.shape[:2]
    np_dtype = dtype
    itemsize = np.dtype(np_dtype).itemsize
    out = np.frombuffer(mmap.mmap(-1, 3 * padded_hw[0] * padded_hw[1] * itemsize), dtype=np_dtype)
    out = out.reshape(1, 3, *padded_hw)
    for channel in range(3):
        plane = out[0, channel, :height, :width]
        # mean/std are float32 values even in double where MMDetection's buffers hold them so
        # (``mmdet_constants``); rfdetr makes them in the input's precision
        channel_mean, channel_std = ((np_dtype(np.float32(mean[channel])), np_dtype(np.float32(std[channel])))
                                     if mmdet_constants else (np_dtype(mean[channel]), np_dtype(std[channel])))
        np.subtract(resized[:, :, channel], channel_mean, out=plane, dtype=np_dtype)
        np.divide(plane, channel_std, out=plane)
        if pad_value is not None and (height, width) != tuple(padded_hw):
            value = (np_dtype(pad_value) - channel_mean) / channel_std
            out[0, channel, height:, :] = value
            out[0, channel, :height, width:] = value
    return out
