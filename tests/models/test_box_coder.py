"""decode_deltas against MMDetection 3.3's ``DeltaXYWHBBoxCoder.decode`` / ``delta2bbox``.

MMDetection's rule, re-derived here: ``d = deltas * stds + means`` (means are 0);
``centre = (p1 + p2) * 0.5``, ``size = p2 - p1`` (no +1); ``dw, dh`` clamped to
``+-|log(16/1000)|``; ``new_centre = centre + size * (dx, dy)``, ``new_size = size * exp(dw, dh)``;
corners ``new_centre -+ new_size * 0.5``; x clipped to ``[0, max_shape[1]]`` and y to
``[0, max_shape[0]]`` where ``max_shape`` is the *resized* image's ``img_shape`` (h, w).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from maskbench.models.mask_rcnn.box_coder import decode_deltas

RCNN_STDS = (0.1, 0.1, 0.2, 0.2)
RPN_STDS = (1.0, 1.0, 1.0, 1.0)


def _mmdet_delta2bbox(rois, deltas, means=(0.0, 0.0, 0.0, 0.0), stds=RPN_STDS, max_shape=None,
                      wh_ratio_clip=16 / 1000):
    """Transcription of ``delta2bbox`` (clip_border=True, add_ctr_clamp=False)."""
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    deltas = deltas.reshape(-1, 4)
    means_t = deltas.new_tensor(means).view(1, -1)
    stds_t = deltas.new_tensor(stds).view(1, -1)
    denorm = deltas * stds_t + means_t
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = np.abs(np.log(wh_ratio_clip))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if max_shape is not None:
        bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
        bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes.reshape(num_bboxes, -1)


def _random_boxes(n: int, generator: torch.Generator, span: float = 400.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * span
    wh = torch.rand(n, 2, generator=generator) * span / 2 + 0.5
    return torch.cat([xy, xy + wh], dim=1)


def test_hand_values_unit_stds():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # centre (20, 40), size (20, 40)
    deltas = torch.tensor([[0.5, -0.25, math.log(2.0), math.log(0.5)]])
    # centre (20 + 10, 40 - 10), size (40, 20)
    torch.testing.assert_close(decode_deltas(box, deltas), torch.tensor([[10.0, 20.0, 50.0, 40.0]]), rtol=0, atol=1e-4)


def test_hand_values_rcnn_stds():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    deltas = torch.tensor([[5.0, -2.5, 5 * math.log(2.0), 5 * math.log(0.5)]])  # x (0.1, 0.1, 0.2, 0.2)
    got = decode_deltas(box, deltas, stds=RCNN_STDS)
    torch.testing.assert_close(got, torch.tensor([[10.0, 20.0, 50.0, 40.0]]), rtol=0, atol=1e-4)


def test_width_has_no_plus_one():
    # width = x2 - x1 = 9: a shift of one width moves the box by exactly 9 px.
    got = decode_deltas(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(got, torch.tensor([[9.0, 0.0, 18.0, 9.0]]))
    # Zero deltas give the box back exactly (the legacy +1 convention would not).
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [2.0, 4.0, 6.0, 12.0]])
    assert torch.equal(decode_deltas(boxes, torch.zeros(2, 4)), boxes)


def test_dw_dh_clamped_at_log_1000_over_16():
    box = torch.tensor([[100.0, 100.0, 102.0, 104.0]])  # centre (101, 102), size (2, 4)
    got = decode_deltas(box, torch.tensor([[0.0, 0.0, 10.0, -10.0]]))
    # exp(+-|log(16/1000)|) = 62.5 and 0.016: width 125, height 0.064
    expected = torch.tensor([[101 - 62.5, 102 - 0.032, 101 + 62.5, 102 + 0.032]])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-3)
    # Just inside the limit nothing is clamped: exp(4) * 2 wide.
    got = decode_deltas(box, torch.tensor([[0.0, 0.0, 4.0, 0.0]]))
    torch.testing.assert_close(got[0, 2] - got[0, 0], torch.tensor(2 * math.exp(4.0)), rtol=1e-6, atol=0)


def test_clamp_applies_after_stds():
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    # 0.2 * 20 = 4 < 4.135: not clamped; 0.2 * 25 = 5 > 4.135: clamped to a 62.5x scale.
    w_not_clamped = decode_deltas(box, torch.tensor([[0.0, 0.0, 20.0, 0.0]]), stds=RCNN_STDS)
    w_clamped = decode_deltas(box, torch.tensor([[0.0, 0.0, 25.0, 0.0]]), stds=RCNN_STDS)
    torch.testing.assert_close(w_not_clamped[0, 2] - w_not_clamped[0, 0], torch.tensor(2 * math.exp(4.0)), rtol=1e-6,
                               atol=0)
    torch.testing.assert_close(w_clamped[0, 2] - w_clamped[0, 0], torch.tensor(125.0), rtol=1e-5, atol=0)


def test_clip_x_to_width_y_to_height_of_resized_image():
    # max_shape is (h, w): x in [0, w], y in [0, h]
    boxes = torch.tensor([[-10.0, -10.0, 120.0, 80.0], [1300.0, 700.0, 1400.0, 800.0]])
    got = decode_deltas(boxes, torch.zeros(2, 4), max_shape=(50, 100))
    assert torch.equal(got[0], torch.tensor([0.0, 0.0, 100.0, 50.0]))
    # nuScenes keep-ratio image: resized 750 x 1333 (padded 768 x 1344 is NOT the limit).
    got = decode_deltas(boxes, torch.zeros(2, 4), max_shape=(750, 1333))
    assert torch.equal(got[1], torch.tensor([1300.0, 700.0, 1333.0, 750.0]))


def test_no_clipping_without_max_shape():
    boxes = torch.tensor([[-10.0, -10.0, 120.0, 80.0]])
    assert torch.equal(decode_deltas(boxes, torch.zeros(1, 4)), boxes)


@pytest.mark.parametrize("stds", [RPN_STDS, RCNN_STDS])
@pytest.mark.parametrize("max_shape", [None, (300, 420), (750, 1333)])
def test_random_equal_mmdet_bit_for_bit(stds, max_shape):
    g = torch.Generator().manual_seed(7)
    boxes = _random_boxes(500, g)
    deltas = torch.randn(500, 4, generator=g) * 3  # |dw| beyond 4.135 / std happens often
    got = decode_deltas(boxes, deltas, stds=stds, max_shape=max_shape)
    assert torch.equal(got, _mmdet_delta2bbox(boxes, deltas, stds=stds, max_shape=max_shape))


def test_class_specific_decoding_layout_equals_mmdet():
    """(N, 80 * 4) deltas: class c of RoI i is row i * 80 + c, as the RCNN head decodes them."""
    g = torch.Generator().manual_seed(3)
    num_rois, num_classes = 30, 80
    proposals = _random_boxes(num_rois, g)
    deltas = torch.randn(num_rois, num_classes * 4, generator=g)
    expected = _mmdet_delta2bbox(proposals, deltas, stds=RCNN_STDS, max_shape=(480, 640)).view(-1, 4)
    got = decode_deltas(proposals.repeat_interleave(num_classes, dim=0), deltas.reshape(-1, 4), RCNN_STDS, (480, 640))
    assert torch.equal(got, expected)
    # and the class-c box of RoI i uses deltas[i, 4c:4c+4]
    i, c = 7, 53
    single = decode_deltas(proposals[i:i + 1], deltas[i:i + 1, 4 * c:4 * c + 4], RCNN_STDS, (480, 640))
    assert torch.equal(got[i * num_classes + c], single[0])
