"""The network's input tensor: the torch side of :mod:`maskbench.pipeline.preprocess`.

:func:`preprocess` wraps the torch-free :func:`~maskbench.pipeline.preprocess.preprocess_array`
in a tensor, so the full install and a deployed bundle feed the network the same bits;
:func:`pad_like_pipeline` pads a tensor as the model's pipeline pads (export and calibration).
"""

from __future__ import annotations

import numpy as np
import torch

from ..pipeline.preprocess import ImageMeta, ResizeMode, preprocess_array
from ..zoo import MASK_RCNN_INPUT, InputFormat


def preprocess(
    image: np.ndarray,
    mode: ResizeMode = ResizeMode.STRETCH,
    input_size: tuple[int, int] | None = None,
    input_format: InputFormat = MASK_RCNN_INPUT,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, ImageMeta]:
    """RGB uint8 HxWx3 -> normalised (1, 3, H', W') padded tensor, and its meta.

    ``input_format`` is the model's (``spec.input_format``): channel order, mean/std, default
    sizes and padding. ``dtype`` float64 normalises in double, as MMDetection's data preprocessor
    does once its model is in double (the parity check, docs/parity.md); default float32."""
    array, meta = preprocess_array(image, mode, input_size, input_format,
                                   np.float64 if dtype == torch.float64 else np.float32)
    return torch.from_numpy(array), meta


def pad_like_pipeline(tensor: torch.Tensor, padded_hw: tuple[int, int], input_format: InputFormat) -> torch.Tensor:
    """A normalised (1, 3, h, w) tensor cropped or padded (right, below) to ``padded_hw`` with
    what the model's pipeline pads with: zeros, or its raw pad value normalised (RTMDet's 114)."""
    tensor = tensor[..., : padded_hw[0], : padded_hw[1]]
    pad_h, pad_w = padded_hw[0] - tensor.shape[-2], padded_hw[1] - tensor.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return tensor
    if input_format.pad_value is None:
        return torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h))
    np_dtype = np.float64 if tensor.dtype == torch.float64 else np.float32
    values = [(np_dtype(input_format.pad_value) - np_dtype(np.float32(m))) / np_dtype(np.float32(s))
              for m, s in zip(input_format.mean, input_format.std)]
    out = torch.tensor(values, dtype=tensor.dtype).view(1, 3, 1, 1).repeat(tensor.shape[0], 1, *padded_hw)
    out[..., : tensor.shape[-2], : tensor.shape[-1]] = tensor
    return out
