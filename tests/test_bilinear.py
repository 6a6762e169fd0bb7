"""The torch-free bilinear resize (``pipeline/bilinear.py``) against PyTorch's ``F.interpolate``
(``align_corners=False``, no antialias), as RF-DETR-Seg uses it on its float image (its masks:
``test_rfdetr_postprocess.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from maskbench.pipeline.bilinear import resize_image


def torch_resize(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    resized = F.interpolate(chw, size=out_hw, mode="bilinear", align_corners=False, antialias=False)
    return resized[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("in_hw", "out_hw"), [((900, 1600), (312, 312)), ((425, 640), (768, 768)), ((7, 5), (3, 11))])
def test_resize_image_is_pytorchs(dtype, in_hw, out_hw):
    """float32: PyTorch's source coordinates in float32 (OpenCV's are exact, up to 4e-5 apart on
    a [0, 1] image at 1600 px); what is left is the last bit of its summation order."""
    image = (np.random.default_rng(0).integers(0, 256, (*in_hw, 3)) / dtype(255)).astype(dtype)
    ours, theirs = resize_image(image, out_hw), torch_resize(image, out_hw)
    assert ours.dtype == dtype and ours.shape == (*out_hw, 3)
    ulp = float(np.finfo(dtype).eps)
    # PyTorch's AVX2 and AVX-512 kernels fuse the coordinate's multiply-add, as ours does; its
    # portable kernel (ATEN_CPU_CAPABILITY=default) rounds twice: coordinates up to ~3e-6 apart
    fused_kernels = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    assert np.abs(ours - theirs).max() <= (4 * ulp if fused_kernels else 1e4 * ulp)
    if dtype == np.float32:  # OpenCV's float resize is not it
        import cv2

        opencv = cv2.resize(image, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
        if in_hw[1] >= 640:
            assert np.abs(opencv - theirs).max() > 100 * ulp
