"""RF-DETR-Seg pre/post-processing against transcriptions of rfdetr 1.11.2's own code, and its
checkpoint loading (docs/rfdetr.md)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from maskbench.models.rfdetr import load_model, load_rfdetr_state_dict, postprocess
from maskbench.models.rfdetr.model import RawOutputs, RFDETRSeg
from maskbench.utils.errors import CheckpointError


def rfdetr_masks(mask_logits: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """rfdetr's ``PostProcess._postprocess_masks``: resize straight to the image, ``> 0``."""
    return (F.interpolate(mask_logits.unsqueeze(1), size=hw, mode="bilinear", align_corners=False) > 0.0)[:, 0].numpy()


def blobby_logits(count: int, side: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Smooth random fields (masks with a few blobs), one all-negative, one positive at a corner only."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 1, side // 6, side // 6, generator=generator, dtype=dtype)
    logits = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)[:, 0] - 0.3
    logits[0] = -1.0
    logits[1] = -1.0
    logits[1, -1, -1] = 2.0
    return logits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hw", [(900, 1600), (425, 640), (78, 78), (40, 30)])
def test_windowed_upsampling_gives_rfdetrs_pixels(dtype, hw):
    logits = blobby_logits(12, 78, dtype, seed=hw[0])
    ours = postprocess.upsample_masks(logits.numpy(), hw).dense()
    theirs = rfdetr_masks(logits, hw)
    assert ours.shape == theirs.shape and ours.dtype == bool
    differing = np.count_nonzero(ours != theirs)
    # only pixels whose resized logit is within rounding of 0 may differ (float64: none)
    assert differing <= (0 if dtype == torch.float64 else 1e-6 * theirs.size), differing
    assert not ours[0].any()
    assert ours[1].any() == (hw[0] >= 78)  # a downscale may skip the one positive corner logit
    assert 0.05 < ours[2:].mean() < 0.95


def test_select_is_rfdetrs_topk_and_box_decoding():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 30, 91, generator=generator, dtype=torch.float64)
    boxes = torch.rand(1, 30, 4, generator=generator, dtype=torch.float64)
    boxes[0, :, 2:] *= 1.5  # some boxes leave the image: clamped
    raw = RawOutputs(logits, boxes, torch.zeros(1, 30, 4, 4, dtype=torch.float64))
    chosen = postprocess.select(raw, 0, (90, 160), num_select=50)
    flat = logits[0].sigmoid().flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:50]
    assert torch.equal(chosen.scores, flat[order])
    assert torch.equal(chosen.slots, order % 91) and torch.equal(chosen.queries, order // 91)
    cx, cy, w, h = boxes[0, order // 91].unbind(-1)
    expected = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * torch.tensor([160, 90, 160, 90])
    expected = torch.minimum(expected.clamp_min(0), torch.tensor([160.0, 90, 160, 90], dtype=torch.float64))
    assert torch.allclose(chosen.boxes, expected, rtol=0, atol=1e-12)
    assert (chosen.boxes[:, 2] <= 160).all() and (chosen.boxes >= 0).all()


def test_preprocess_is_rgb_imagenet_normalised_square():
    image = np.zeros((50, 80, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 10  # R, G, B
    tensor = postprocess.preprocess(image, 36, torch.float64)
    assert tensor.shape == (1, 3, 36, 36)
    expected = [(v / 255 - m) / s for v, m, s in zip((200, 100, 10), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    assert torch.allclose(tensor[0, :, 0, 0], torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_slots_map_to_coco_labels_and_unused_slots_are_dropped():
    assert postprocess.slot_to_label(np.array([1, 90, 0, 12, 13])).tolist() == [0, 79, -1, -1, 11]
    logits = torch.full((1, 3, 91), -10.0)
    logits[0, 0, 1], logits[0, 1, 12], logits[0, 2, 90] = 5.0, 4.0, 3.0  # person, unused slot 12, toothbrush
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]] * 3])
    raw = RawOutputs(logits, boxes, torch.ones(1, 3, 8, 8))
    detections = postprocess.to_detections(raw, 0, (20, 30), num_select=3)
    assert detections.labels.tolist() == [0, 79]
    assert detections.masks.shape == (2, 20, 30) and detections.masks.all()


def test_official_checkpoint_layout_loads_without_running_code(tmp_path):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in RFDETRSeg("rfdetr-seg-n").state_dict().items()}
    base = torch.zeros(1, dtype=torch.float16)  # one shared storage keeps the file small
    weights = {k: base.expand(shape) for k, shape in shapes.items()}
    weights["_kp_active_mask"] = torch.zeros(0, 0, dtype=torch.bool)
    path = tmp_path / "rf-detr-seg-n-ft.pth"
    torch.save({"model": weights, "args": argparse.Namespace(num_classes=90, resolution=312), "epoch": 11}, path)
    assert set(load_rfdetr_state_dict(path)) == set(shapes)
    model = load_model("rfdetr-seg-n", path)
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(CheckpointError, match="not an rfdetr-seg-s checkpoint"):
        load_model("rfdetr-seg-s", path)


class RunsCode:
    def __reduce__(self):
        return print, ("unpickling ran code",)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_rfdetr_state_dict(path)
