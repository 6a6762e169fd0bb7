"""RTMDet-Ins (:mod:`maskbench.models.rtmdet.model`): checkpoint names, sizes, shapes, dtypes.

The numbers below were measured on MMDetection 3.3.0 (``MODELS.build`` of the five
``rtmdet-ins_*_coco.py`` configs, oracle environment); the stage-by-stage float64 agreement
with MMDetection is checked by ``tools/oracle/check_rtmdet.py`` (identical to the last bit).
"""

from __future__ import annotations

from typing import cast

import pytest
import torch
import torch.nn.functional as F

from maskbench.models.factory import build_model
from maskbench.models.random_init import randomize_
from maskbench.models.rtmdet.model import RTMDetIns, RTMDetTestConfig, point_priors
from maskbench.zoo import get_spec


def build_rtmdet_ins(size: str, config: RTMDetTestConfig | None = None) -> RTMDetIns:
    """The zoo's RTMDet-Ins of that size (``tiny``, ``s``, ``m``, ``l``, ``x``)."""
    spec = get_spec(f"rtmdet-ins-{'t' if size == 'tiny' else size}")
    return cast(RTMDetIns, build_model(spec, fixed_count=config is not None and config.fixed_count))


#: size -> (parameters, as MMDetection counts them: shared convs once; state-dict entries)
MMDET_COUNTS = {
    "tiny": (5_638_187, 546),
    "s": (10_183_311, 582),
    "m": (27_575_111, 762),
    "l": (57_365_663, 942),
    "x": (102_703_767, 1122),
}

#: A sample of MMDetection's state-dict keys for RTMDet-Ins-tiny, in MMDetection's order.
TINY_KEYS = [
    "backbone.stem.0.conv.weight",
    "backbone.stem.0.bn.running_mean",
    "backbone.stem.2.bn.num_batches_tracked",
    "backbone.stage1.0.conv.weight",
    "backbone.stage1.1.main_conv.conv.weight",
    "backbone.stage1.1.short_conv.bn.weight",
    "backbone.stage1.1.final_conv.conv.weight",
    "backbone.stage1.1.blocks.0.conv1.conv.weight",
    "backbone.stage1.1.blocks.0.conv2.depthwise_conv.conv.weight",
    "backbone.stage1.1.blocks.0.conv2.depthwise_conv.bn.running_var",
    "backbone.stage1.1.blocks.0.conv2.pointwise_conv.conv.weight",
    "backbone.stage1.1.attention.fc.weight",
    "backbone.stage1.1.attention.fc.bias",
    "backbone.stage4.1.conv1.conv.weight",
    "backbone.stage4.1.conv2.bn.bias",
    "backbone.stage4.2.blocks.0.conv1.conv.weight",
    "backbone.stage4.2.attention.fc.weight",
    "neck.reduce_layers.0.conv.weight",
    "neck.reduce_layers.1.bn.running_mean",
    "neck.top_down_blocks.0.main_conv.conv.weight",
    "neck.top_down_blocks.1.blocks.0.conv2.pointwise_conv.bn.weight",
    "neck.downsamples.0.conv.weight",
    "neck.bottom_up_blocks.1.final_conv.conv.weight",
    "neck.out_convs.2.bn.num_batches_tracked",
    "bbox_head.cls_convs.0.0.conv.weight",
    "bbox_head.cls_convs.1.0.conv.weight",
    "bbox_head.cls_convs.2.1.bn.running_var",
    "bbox_head.reg_convs.0.0.conv.weight",
    "bbox_head.reg_convs.2.1.bn.weight",
    "bbox_head.kernel_convs.0.0.conv.weight",
    "bbox_head.kernel_convs.2.1.bn.bias",
    "bbox_head.rtm_cls.0.weight",
    "bbox_head.rtm_cls.2.bias",
    "bbox_head.rtm_reg.1.weight",
    "bbox_head.rtm_kernel.2.weight",
    "bbox_head.mask_head.fusion_conv.weight",
    "bbox_head.mask_head.stacked_convs.0.conv.weight",
    "bbox_head.mask_head.stacked_convs.3.bn.running_mean",
    "bbox_head.mask_head.projection.weight",
    "bbox_head.mask_head.projection.bias",
]
#: Keys MMDetection does not have (no bias before a BN, no objectness branch, no scales).
ABSENT_KEYS = ["backbone.stem.0.conv.bias", "bbox_head.rtm_obj.0.weight", "bbox_head.scales.0.scale",
               "bbox_head.cls_convs.0.0.conv.bias"]


def _meta_model(size: str):
    with torch.device("meta"):
        return build_rtmdet_ins(size)


@pytest.mark.parametrize("size", list(MMDET_COUNTS))
def test_parameter_and_state_dict_counts_equal_mmdetection(size: str) -> None:
    model = _meta_model(size)
    params, entries = MMDET_COUNTS[size]
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(model.state_dict()) == entries


@pytest.mark.parametrize("size", ["tiny", "s"])
def test_state_dict_names_are_mmdetection_checkpoint_keys(size: str) -> None:
    keys = list(_meta_model(size).state_dict())
    positions = [keys.index(k) for k in TINY_KEYS]  # ValueError names a missing key
    assert positions == sorted(positions)
    assert not set(ABSENT_KEYS) & set(keys)


def test_head_shares_what_mmdetection_shares() -> None:
    head = _meta_model("tiny").bbox_head
    assert head.reg_convs is head.cls_convs
    assert head.cls_convs[2][1].conv is head.cls_convs[0][1].conv
    assert head.cls_convs[2][1].bn is not head.cls_convs[0][1].bn
    assert head.kernel_convs[1][0].conv is not head.kernel_convs[0][0].conv
    assert head.num_gen_params == 169  # (8+2)*8+8 + 8*8+8 + 8+1


def test_point_priors_are_mmdetection_grid() -> None:
    priors = point_priors([(2, 3)], [16], torch.float64)[0]
    assert priors.dtype == torch.float64
    assert priors[:4].tolist() == [[0, 0, 16, 16], [16, 0, 16, 16], [32, 0, 16, 16], [0, 16, 16, 16]]


def test_mask_logits_are_per_instance_dynamic_convs() -> None:
    """Against a direct per-instance evaluation of the three 1x1 convs."""
    model = _meta_model("tiny")  # only the head's layout is used
    mask_feat = torch.randn(8, 5, 7, dtype=torch.float64)
    kernels = torch.randn(3, 169, dtype=torch.float64)
    priors = torch.tensor([[16.0, 8.0, 8, 8], [0.0, 32.0, 16, 16], [64.0, 32.0, 32, 32]], dtype=torch.float64)
    logits = model.mask_logits(mask_feat, kernels, priors)
    assert logits.shape == (3, 5, 7)
    ys, xs = torch.meshgrid(torch.arange(5.0, dtype=torch.float64) * 8, torch.arange(7.0, dtype=torch.float64) * 8,
                            indexing="ij")
    for i, (k, p) in enumerate(zip(kernels, priors)):
        w1, w2, w3, b1, b2, b3 = torch.split(k, [80, 64, 8, 8, 8, 1])
        coords = torch.stack([(p[0] - xs), (p[1] - ys)]) / (p[2] * 8)
        x = torch.cat([coords, mask_feat]).reshape(10, -1)
        x = F.relu(w1.reshape(8, 10) @ x + b1[:, None])
        x = F.relu(w2.reshape(8, 8) @ x + b2[:, None])
        x = w3.reshape(1, 8) @ x + b3[:, None]
        torch.testing.assert_close(logits[i], x.reshape(5, 7), rtol=1e-12, atol=1e-12)


def _check_raw(raw, img_shape: tuple[int, int], feat_shape: tuple[int, int], dtype: torch.dtype) -> None:
    count = raw.boxes.shape[0]
    assert raw.boxes.shape == (count, 4) and raw.scores.shape == (count,) and raw.labels.shape == (count,)
    assert raw.masks.shape == (count, *feat_shape)
    assert raw.boxes.dtype == raw.scores.dtype == raw.masks.dtype == dtype
    assert raw.labels.dtype == torch.int64
    if count:
        assert int(raw.labels.min()) >= 0 and int(raw.labels.max()) < 80
        assert bool((raw.scores[:-1] >= raw.scores[1:]).all())
        assert float(raw.boxes[:, 0::2].max()) <= img_shape[1] and float(raw.boxes[:, 1::2].max()) <= img_shape[0]
        assert float(raw.boxes.min()) >= 0


def test_forward_shapes() -> None:
    torch.manual_seed(0)
    model = build_rtmdet_ins("tiny").eval()
    results = model(torch.randn(1, 3, 96, 160), [(90, 150)])
    assert len(results) == 1
    assert results[0].boxes.shape[0] <= 100
    _check_raw(results[0], (90, 150), (12, 20), torch.float32)
    if results[0].scores.numel():
        assert float(results[0].scores.min()) > 0.05


def test_fixed_count_gives_exactly_max_per_img_per_image() -> None:
    model = randomize_(build_rtmdet_ins("tiny", RTMDetTestConfig(fixed_count=True)), seed=3).eval()
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    results = model(images, [(64, 96), (60, 80)])
    for raw, shape in zip(results, [(64, 96), (60, 80)]):
        assert raw.boxes.shape[0] == 100
        _check_raw(raw, shape, (8, 12), torch.float32)
    # The batch is per image: image 1 alone gives the same detections.
    alone = model(images[1:], [(60, 80)])[0]
    torch.testing.assert_close(alone.boxes, results[1].boxes)
    torch.testing.assert_close(alone.masks, results[1].masks)


def test_float64_runs_in_float64() -> None:
    model = randomize_(build_rtmdet_ins("tiny", RTMDetTestConfig(fixed_count=True)), seed=3).double().eval()
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    features = model.extract_features(image)
    assert [f.shape[-2:] for f in features] == [(8, 12), (4, 6), (2, 3)]
    assert all(f.dtype == torch.float64 for f in features)
    raw = model(image, [(60, 90)])[0]
    assert raw.boxes.shape[0] == 100
    _check_raw(raw, (60, 90), (8, 12), torch.float64)
