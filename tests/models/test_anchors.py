"""AnchorGenerator against MMDetection 3.3's ``AnchorGenerator`` (RPN config of every zoo model).

MMDetection's rule, re-derived here: per level, ``base_size = stride``; for each ratio r
(= h / w) ``h_ratio = sqrt(r)``, ``w_ratio = 1 / h_ratio``; with ``scale_major=True`` the
ratio index varies slowest, ``ws = base_size * w_ratio * scale``; the base anchor is centred on
``center_offset * base_size = 0`` (the top-left corner of the cell, not its centre).  Grid
anchors add shifts ``(x * stride, y * stride)`` with y outermost, then x, then the anchor:
index ``(y * W + x) * A + a`` -- the order of ``rpn_cls(...).permute(1, 2, 0).reshape(-1)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from maskbench.models.mask_rcnn.anchors import AnchorGenerator

RATIOS = (0.5, 1.0, 2.0)
SCALES = (8.0,)
STRIDES = (4, 8, 16, 32, 64)
SQRT2 = math.sqrt(2.0)


def _mmdet_base_anchors(base_size: int, ratios, scales, center_offset: float = 0.0) -> torch.Tensor:
    """Transcription of ``gen_single_level_base_anchors`` (float32, same operation order)."""
    ratios_t = torch.Tensor(list(ratios))
    scales_t = torch.Tensor(list(scales))
    w = h = base_size
    x_center = center_offset * w
    y_center = center_offset * h
    h_ratios = torch.sqrt(ratios_t)
    w_ratios = 1 / h_ratios
    ws = (w * w_ratios[:, None] * scales_t[None, :]).view(-1)
    hs = (h * h_ratios[:, None] * scales_t[None, :]).view(-1)
    return torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs], dim=-1)


def _mmdet_grid(base_anchors: torch.Tensor, stride: int, feat_h: int, feat_w: int) -> torch.Tensor:
    """Transcription of ``single_level_grid_priors`` with its ``_meshgrid`` (row major)."""
    shift_x = torch.arange(0, feat_w).to(torch.float32) * stride
    shift_y = torch.arange(0, feat_h).to(torch.float32) * stride
    xx = shift_x.repeat(shift_y.shape[0])
    yy = shift_y.view(-1, 1).repeat(1, shift_x.shape[0]).view(-1)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1)
    return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)


def test_base_anchors_stride4_hand_values():
    gen = AnchorGenerator()
    # stride 4, scale 8 -> side 32; ratio 0.5: w = 32*sqrt2, h = 32/sqrt2; ratio 2: transposed.
    expected = torch.tensor(
        [
            [-16 * SQRT2, -8 * SQRT2, 16 * SQRT2, 8 * SQRT2],
            [-16.0, -16.0, 16.0, 16.0],
            [-8 * SQRT2, -16 * SQRT2, 8 * SQRT2, 16 * SQRT2],
        ]
    )
    assert gen.base_anchors[0].dtype == torch.float32
    torch.testing.assert_close(gen.base_anchors[0], expected, rtol=0, atol=1e-5)
    # 45.2548 x 22.6274 written out, to make the numbers visible.
    torch.testing.assert_close(
        gen.base_anchors[0][0], torch.tensor([-22.627417, -11.313708, 22.627417, 11.313708]), rtol=0, atol=1e-5
    )


def test_base_anchors_stride8_hand_values():
    gen = AnchorGenerator()
    expected = torch.tensor(
        [
            [-32 * SQRT2, -16 * SQRT2, 32 * SQRT2, 16 * SQRT2],
            [-32.0, -32.0, 32.0, 32.0],
            [-16 * SQRT2, -32 * SQRT2, 16 * SQRT2, 32 * SQRT2],
        ]
    )
    torch.testing.assert_close(gen.base_anchors[1], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("level", range(5))
def test_base_anchors_equal_mmdet_bit_for_bit(level):
    gen = AnchorGenerator()
    expected = _mmdet_base_anchors(STRIDES[level], RATIOS, SCALES)
    assert torch.equal(gen.base_anchors[level], expected)
    # Widths/heights are stride * 8 * {sqrt2, 1, 1/sqrt2} and areas all (8 * stride)^2.
    wh = gen.base_anchors[level][:, 2:] - gen.base_anchors[level][:, :2]
    torch.testing.assert_close(wh.prod(dim=1), torch.full((3,), float(8 * STRIDES[level]) ** 2), rtol=1e-6, atol=0)
    torch.testing.assert_close(wh[:, 1] / wh[:, 0], torch.tensor(RATIOS), rtol=1e-6, atol=0)


def test_center_offset_zero_and_cell_corner_centres():
    gen = AnchorGenerator()
    (level0, level1, *_) = gen.grid_anchors([(3, 5), (2, 2), (1, 1), (1, 1), (1, 1)])
    centres = (level0[:, :2] + level0[:, 2:]) / 2
    # Cell (y=0, x=0) is centred on (0, 0), not (2, 2) as a centre offset of 0.5 would give.
    torch.testing.assert_close(centres[:3], torch.zeros(3, 2), rtol=0, atol=1e-5)
    # Cell (y=1, x=2) at stride 4 -> centre (x=8, y=4); the square anchor (a=1) is 32 wide.
    index = (1 * 5 + 2) * 3 + 1
    torch.testing.assert_close(level0[index], torch.tensor([8.0 - 16, 4.0 - 16, 8.0 + 16, 4.0 + 16]), rtol=0, atol=0)
    # Stride 8, cell (y=1, x=1), ratio 0.5 anchor: centre (8, 8).
    index = (1 * 2 + 1) * 3 + 0
    torch.testing.assert_close(
        level1[index], torch.tensor([8 - 32 * SQRT2, 8 - 16 * SQRT2, 8 + 32 * SQRT2, 8 + 16 * SQRT2]), rtol=0, atol=1e-4
    )


def test_grid_order_is_h_then_w_then_anchor():
    gen = AnchorGenerator()
    height, width, stride = 3, 5, 8
    anchors = gen.grid_anchors([(1, 1), (height, width), (1, 1), (1, 1), (1, 1)])[1]
    assert anchors.shape == (height * width * 3, 4)
    base = _mmdet_base_anchors(stride, RATIOS, SCALES)
    for y in range(height):
        for x in range(width):
            for a in range(3):
                shift = torch.tensor([x * stride, y * stride, x * stride, y * stride], dtype=torch.float32)
                assert torch.equal(anchors[(y * width + x) * 3 + a], base[a] + shift), (y, x, a)


def test_grid_order_matches_rpn_output_flattening():
    """The anchor of objectness channel a at (y, x) is the one the flattened score index points to."""
    gen = AnchorGenerator()
    height, width = 4, 7
    anchors = gen.grid_anchors([(height, width)] + [(1, 1)] * 4)[0]
    objectness = torch.arange(3 * height * width, dtype=torch.float32).reshape(3, height, width)
    flat = objectness.permute(1, 2, 0).reshape(-1)  # what RPN selection does (MMDetection too)
    for i in [0, 1, 2, 3, 20, 41, 83]:
        a, rest = int(flat[i]) // (height * width), int(flat[i]) % (height * width)
        y, x = divmod(rest, width)
        centre = (anchors[i, :2] + anchors[i, 2:]) / 2
        torch.testing.assert_close(centre, torch.tensor([x * 4.0, y * 4.0]), rtol=0, atol=1e-5)
        shift = torch.tensor([x * 4.0, y * 4.0, x * 4.0, y * 4.0])
        torch.testing.assert_close(anchors[i], gen.base_anchors[0][a] + shift, rtol=0, atol=1e-5)


@pytest.mark.parametrize("sizes", [[(200, 336), (100, 168), (50, 84), (25, 42), (13, 21)],
                                   [(25, 37), (13, 19), (7, 10), (4, 5), (2, 3)]])
def test_grid_anchors_equal_mmdet_and_count_per_level(sizes):
    gen = AnchorGenerator()
    assert gen.num_anchors_per_location == 3
    anchors = gen.grid_anchors(sizes)
    assert len(anchors) == 5
    for level, ((h, w), got) in enumerate(zip(sizes, anchors)):
        assert got.shape == (h * w * 3, 4)
        assert got.dtype == torch.float32
        expected = _mmdet_grid(_mmdet_base_anchors(STRIDES[level], RATIOS, SCALES), STRIDES[level], h, w)
        assert torch.equal(got, expected)
