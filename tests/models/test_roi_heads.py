"""Second stage against MMDetection 3.3 (``SingleRoIExtractor``, ``Shared2FCBBoxHead`` /
``Shared4Conv1FCBBoxHead``, ``multiclass_nms``, ``FCNMaskHead``).

Re-derived from MMDetection:
- level of a RoI: ``scale = sqrt(w * h)``, ``floor(log2(scale / 56 + 1e-6))`` clamped to [0, 3];
  pooled with mmcv ``RoIAlign(aligned=True, sampling_ratio=0)`` at ``spatial_scale = 1 / stride``
  (same algorithm as ``torchvision.ops.roi_align(aligned=True)``).
- boxes: ``softmax`` over 81 logits, background = last column, dropped; class-specific deltas
  decoded with stds (0.1, 0.1, 0.2, 0.2) against the resized ``img_shape``; keep
  ``score > score_thr`` (strict); mmcv ``batched_nms`` per class at IoU 0.5 (boxes shifted by
  ``label * (max + 1)``, one NMS, sorted by score); first ``max_per_img``.
- masks: FCNMaskHead logits ``(n, 80, 28, 28)``, ``sigmoid``, then the row of each detection's label.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from maskbench.models.mask_rcnn.model import MaskRCNN
from maskbench.models.mask_rcnn.roi_heads import (
    BBoxHead,
    DetectionConfig,
    MaskHead,
    RoIExtractor,
    select_detections,
)

STRIDES = (4, 8, 16, 32)


# ----------------------------------------------------------------------------- references
def _mmdet_map_roi_levels(rois: torch.Tensor, num_levels: int = 4, finest_scale: int = 56) -> torch.Tensor:
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    target = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return target.clamp(min=0, max=num_levels - 1).long()


def _mmdet_delta2bbox_rcnn(rois, deltas, max_shape):
    """delta2bbox with RCNN stds for (N, C * 4) deltas."""
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    deltas = deltas.reshape(-1, 4)
    denorm = deltas * deltas.new_tensor([0.1, 0.1, 0.2, 0.2]).view(1, -1) + deltas.new_tensor([0.0] * 4).view(1, -1)
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    max_ratio = np.abs(np.log(16 / 1000))
    dwh = denorm[:, 2:].clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + pwh * denorm[:, :2]
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
    bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes.reshape(num_bboxes, -1)


def _mmdet_bbox_predict(cls_score, bbox_pred, proposals, img_shape, score_thr=0.05, iou_thr=0.5, max_num=100):
    """BBoxHead._predict_by_feat_single + multiclass_nms + mmcv batched_nms (< 10000 boxes)."""
    scores_all = F.softmax(cls_score, dim=-1)
    num_classes = scores_all.size(1) - 1
    roi = proposals.repeat_interleave(num_classes, dim=0)
    bboxes = _mmdet_delta2bbox_rcnn(roi, bbox_pred.view(-1, 4), img_shape).view(proposals.size(0), -1)
    # multiclass_nms
    bboxes = bboxes.view(scores_all.size(0), -1, 4)
    scores = scores_all[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long).view(1, -1).expand_as(scores)
    bboxes, scores, labels = bboxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    inds = (scores > score_thr).nonzero(as_tuple=False).squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    if bboxes.numel() == 0:
        return bboxes, scores, labels
    offsets = labels.to(bboxes) * (bboxes.max() + torch.tensor(1).to(bboxes))
    keep = nms(bboxes + offsets[:, None], scores, iou_thr)[:max_num]
    return bboxes[keep], scores[keep], labels[keep]


def _conv_module(x, module, padding):
    """mmcv ConvModule: conv, then BN (eval statistics) if present, then ReLU."""
    x = F.conv2d(x, module.conv.weight, module.conv.bias, padding=padding)
    if getattr(module, "bn", None) is not None:
        bn = module.bn
        x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return F.relu(x)


def _mmdet_fcn_mask_head(head: MaskHead, x):
    for conv in head.convs:
        x = _conv_module(x, conv, 1)
    x = F.relu(F.conv_transpose2d(x, head.upsample.weight, head.upsample.bias, stride=2))
    return F.conv2d(x, head.conv_logits.weight, head.conv_logits.bias)


def _mmdet_convfc_bbox_head(head: BBoxHead, x):
    for conv in head.shared_convs:
        x = _conv_module(x, conv, 1)
    x = x.flatten(1)
    for fc in head.shared_fcs:
        x = F.relu(F.linear(x, fc.weight, fc.bias))
    return F.linear(x, head.fc_cls.weight, head.fc_cls.bias), F.linear(x, head.fc_reg.weight, head.fc_reg.bias)


def _rois_with_sides(sides, x0=3.0, y0=5.0, batch=0.0):
    """(K, 5) RoIs whose width and height are given by ``sides`` (w, h)."""
    rows = [[batch, x0, y0, x0 + w, y0 + h] for w, h in sides]
    return torch.tensor(rows, dtype=torch.float32)


# ----------------------------------------------------------------------------- levels
# (w, h) -> level, derived by hand from floor(log2(sqrt(w h) / 56 + 1e-6)) clamped to [0, 3]
LEVEL_CASES = [
    ((0.0, 0.0), 0),  # log2(1e-6) = -19.9 -> clamped
    ((10.0, 10.0), 0),
    ((56.0, 56.0), 0),
    ((111.9, 111.9), 0),
    ((111.9999, 111.9999), 0),  # 1.99999823 + 1e-6 < 2
    ((111.99997, 111.99997), 1),  # 1.99999946 + 1e-6 >= 2: the epsilon lifts it to level 1
    ((112.0, 112.0), 1),
    ((224.0, 56.0), 1),  # sqrt(224 * 56) = 112
    ((223.99, 223.99), 1),
    ((224.0, 224.0), 2),
    ((447.99, 447.99), 2),
    ((448.0, 448.0), 3),
    ((896.0, 224.0), 3),  # sqrt = 448
    ((1000.0, 1000.0), 3),  # log2(17.9) = 4.16 -> clamped to 3
]


def test_map_levels_boundaries_by_hand():
    rois = _rois_with_sides([wh for wh, _ in LEVEL_CASES], x0=0.0, y0=0.0)
    expected = torch.tensor([level for _, level in LEVEL_CASES])
    got = RoIExtractor(7).map_levels(rois)
    assert torch.equal(got, expected)
    assert torch.equal(_mmdet_map_roi_levels(rois), expected)  # the hand table is MMDetection's rule


def test_map_levels_random_equals_mmdet():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=g) * 600
    wh = torch.exp(torch.rand(2000, 2, generator=g) * 7)  # 1 .. 1100 px
    rois = torch.cat([torch.zeros(2000, 1), xy, xy + wh], dim=1)
    assert torch.equal(RoIExtractor(14).map_levels(rois), _mmdet_map_roi_levels(rois))


@pytest.mark.parametrize("output_size", [7, 14])
def test_roi_extractor_equals_roi_align_on_mapped_level(output_size):
    g = torch.Generator().manual_seed(1)
    channels, img_h, img_w = 4, 250, 330
    features = [torch.randn(2, channels, math.ceil(img_h / s), math.ceil(img_w / s), generator=g) for s in STRIDES]
    sides = [(20.3, 30.7), (60.0, 70.0), (130.5, 100.25), (260.0, 200.0), (300.0, 240.0), (5.5, 3.25), (112.0, 112.0)]
    expected_levels = [0, 0, 1, 2, 2, 0, 1]
    rois = torch.cat([_rois_with_sides(sides, 7.3, 2.9, 0.0), _rois_with_sides(sides[::-1], 12.0, 6.5, 1.0)])
    levels = expected_levels + expected_levels[::-1]
    extractor = RoIExtractor(output_size)
    assert extractor.map_levels(rois).tolist() == levels
    got = extractor(features, rois)
    assert got.shape == (rois.shape[0], channels, output_size, output_size)
    for i, level in enumerate(levels):
        expected = roi_align(features[level], rois[i:i + 1], output_size, spatial_scale=1.0 / STRIDES[level],
                             sampling_ratio=0, aligned=True)
        assert torch.equal(got[i:i + 1], expected), i


def test_roi_extractor_aligned_true_differs_from_aligned_false():
    """Guards against aligned=False (the half-pixel shift of legacy RoIAlign)."""
    g = torch.Generator().manual_seed(2)
    features = [torch.randn(1, 2, 40, 40, generator=g)] + [torch.randn(1, 2, 20 // 2 ** i, 20 // 2 ** i) for i in
                                                            range(3)]
    rois = torch.tensor([[0.0, 10.3, 20.1, 50.7, 60.9]])
    got = RoIExtractor(7)(features, rois)
    legacy = roi_align(features[0], rois, 7, spatial_scale=0.25, sampling_ratio=0, aligned=False)
    assert not torch.allclose(got, legacy)


# ----------------------------------------------------------------------------- heads: names
def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_shared2fc_bbox_head_keys():
    assert _shapes(BBoxHead()) == {
        "shared_fcs.0.weight": (1024, 256 * 7 * 7), "shared_fcs.0.bias": (1024,),
        "shared_fcs.1.weight": (1024, 1024), "shared_fcs.1.bias": (1024,),
        "fc_cls.weight": (81, 1024), "fc_cls.bias": (81,),
        "fc_reg.weight": (320, 1024), "fc_reg.bias": (320,),
    }


def test_shared4conv1fc_bbox_head_with_norm_keys():
    expected = {}
    for i in range(4):
        expected[f"shared_convs.{i}.conv.weight"] = (256, 256, 3, 3)  # no conv bias next to a norm
        for name in ("weight", "bias", "running_mean", "running_var"):
            expected[f"shared_convs.{i}.bn.{name}"] = (256,)
        expected[f"shared_convs.{i}.bn.num_batches_tracked"] = ()
    expected.update({
        "shared_fcs.0.weight": (1024, 256 * 7 * 7), "shared_fcs.0.bias": (1024,),
        "fc_cls.weight": (81, 1024), "fc_cls.bias": (81,),
        "fc_reg.weight": (320, 1024), "fc_reg.bias": (320,),
    })
    assert _shapes(BBoxHead(num_convs=4, num_fcs=1, with_norm=True)) == expected


def test_fcn_mask_head_keys():
    expected = {}
    for i in range(4):
        expected[f"convs.{i}.conv.weight"] = (256, 256, 3, 3)
        expected[f"convs.{i}.conv.bias"] = (256,)
    expected.update({
        "upsample.weight": (256, 256, 2, 2), "upsample.bias": (256,),  # ConvTranspose2d (in, out, k, k)
        "conv_logits.weight": (80, 256, 1, 1), "conv_logits.bias": (80,),
    })
    assert _shapes(MaskHead()) == expected


def test_fcn_mask_head_with_norm_keys():
    shapes = _shapes(MaskHead(with_norm=True))
    for i in range(4):
        assert shapes[f"convs.{i}.conv.weight"] == (256, 256, 3, 3)
        assert f"convs.{i}.conv.bias" not in shapes
        assert shapes[f"convs.{i}.bn.running_var"] == (256,)
    assert shapes["conv_logits.weight"] == (80, 256, 1, 1)


# ----------------------------------------------------------------------------- heads: forward
@pytest.mark.parametrize("variant", [dict(), dict(num_convs=4, num_fcs=1, with_norm=True)], ids=["2fc", "4conv1fc"])
def test_bbox_head_forward_equals_mmdet(variant):
    torch.manual_seed(3)
    head = BBoxHead(num_classes=5, in_channels=8, roi_size=7, fc_channels=16, **variant).eval()
    for module in head.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(6, 8, 7, 7)
    with torch.no_grad():
        cls, reg = head(x)
        exp_cls, exp_reg = _mmdet_convfc_bbox_head(head, x)
    assert cls.shape == (6, 6) and reg.shape == (6, 20)
    torch.testing.assert_close(cls, exp_cls, rtol=0, atol=1e-6)
    torch.testing.assert_close(reg, exp_reg, rtol=0, atol=1e-6)


@pytest.mark.parametrize("with_norm", [False, True])
def test_mask_head_forward_equals_mmdet(with_norm):
    torch.manual_seed(4)
    head = MaskHead(num_classes=3, with_norm=with_norm, channels=8).eval()
    x = torch.randn(2, 8, 14, 14)
    with torch.no_grad():
        got = head(x)
        expected = _mmdet_fcn_mask_head(head, x)
    assert got.shape == (2, 3, 28, 28)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- detections
CFG = DetectionConfig()


def _random_detection_inputs(seed, num_rois=60, num_classes=80, img_shape=(300, 400), logit_scale=3.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 2, generator=g) * torch.tensor([img_shape[1], img_shape[0]])
    pick = torch.randint(0, 6, (num_rois,), generator=g)
    c = centres[pick] + torch.randn(num_rois, 2, generator=g) * 8  # clustered: NMS matters
    wh = 20 + torch.rand(num_rois, 2, generator=g) * 80
    proposals = torch.cat([c - wh / 2, c + wh / 2], dim=1).clamp(min=0)
    proposals[:, 2].clamp_(max=img_shape[1])
    proposals[:, 3].clamp_(max=img_shape[0])
    cls_logits = torch.randn(num_rois, num_classes + 1, generator=g) * logit_scale
    deltas = torch.randn(num_rois, num_classes * 4, generator=g)
    return cls_logits, deltas, proposals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_detections_equals_mmdet_multiclass_nms(seed):
    cls_logits, deltas, proposals = _random_detection_inputs(seed)
    img_shape = (300, 400)
    boxes, scores, labels = select_detections(cls_logits, deltas, proposals, img_shape, CFG)
    exp_boxes, exp_scores, exp_labels = _mmdet_bbox_predict(cls_logits, deltas, proposals, img_shape)
    assert 20 < boxes.shape[0] <= 100
    assert torch.equal(labels, exp_labels)
    assert torch.equal(scores, exp_scores)
    assert torch.equal(boxes, exp_boxes)
    assert labels.dtype == torch.long and int(labels.max()) < 80


def test_select_detections_max_100_sorted_by_score():
    cls_logits, deltas, proposals = _random_detection_inputs(5, num_rois=400, logit_scale=4.0)
    img_shape = (300, 400)
    boxes, scores, labels = select_detections(cls_logits, deltas, proposals, img_shape, CFG)
    exp_boxes, exp_scores, exp_labels = _mmdet_bbox_predict(cls_logits, deltas, proposals, img_shape)
    assert boxes.shape == (100, 4)
    assert bool((scores[:-1] >= scores[1:]).all())
    assert torch.equal(scores, exp_scores) and torch.equal(labels, exp_labels) and torch.equal(boxes, exp_boxes)


def test_background_is_last_column_and_boxes_are_class_specific():
    # softmax([ln 6, ln 3, ln 1]) = (0.6, 0.3, 0.1): classes 0 and 1, background 0.1 (last).
    cls_logits = torch.log(torch.tensor([[6.0, 3.0, 1.0]]))
    proposal = torch.tensor([[10.0, 10.0, 30.0, 50.0]])  # w 20, h 40
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])  # class 1: dx = 0.1 * 20 = 2 px
    boxes, scores, labels = select_detections(cls_logits, deltas, proposal, (100, 100), CFG)
    assert labels.tolist() == [0, 1]
    torch.testing.assert_close(scores, torch.tensor([0.6, 0.3]), rtol=1e-6, atol=0)
    assert torch.equal(boxes, torch.tensor([[10.0, 10.0, 30.0, 50.0], [12.0, 10.0, 32.0, 50.0]]))


def test_background_never_detected_even_when_highest():
    cls_logits = torch.log(torch.tensor([[0.02, 0.08, 0.9]]))  # only class 1 passes 0.05
    boxes, scores, labels = select_detections(cls_logits, torch.zeros(1, 8), torch.tensor([[0.0, 0.0, 9.0, 9.0]]),
                                              (20, 20), CFG)
    assert labels.tolist() == [1]
    torch.testing.assert_close(scores, torch.tensor([0.08]), rtol=1e-5, atol=0)


def test_score_threshold_is_strict():
    cls_logits, deltas, proposals = _random_detection_inputs(8, num_rois=20)
    probs = F.softmax(cls_logits, dim=-1)[:, :-1].reshape(-1)
    threshold_value = float(probs.sort(descending=True).values[10])  # exactly one of the scores
    cfg = DetectionConfig(score_thr=threshold_value, max_per_img=1000, iou_threshold=1.0)
    _, scores, _ = select_detections(cls_logits, deltas, proposals, (300, 400), cfg)
    assert scores.shape[0] == 10  # the one equal to score_thr is out
    assert float(scores.min()) > threshold_value


def test_nms_is_per_class_at_iou_half():
    proposals = torch.tensor([
        [0.0, 0.0, 100.0, 100.0],
        [0.0, 0.0, 100.0, 60.0],  # IoU 0.6 with the first -> suppressed in the same class
        [0.0, 0.0, 100.0, 40.0],  # IoU 0.4 with the first -> kept
    ])
    logits = torch.log(torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.15, 0.05], [0.7, 0.25, 0.05]]))
    boxes, scores, labels = select_detections(logits, torch.zeros(3, 8), proposals, (200, 200), CFG)
    # class 0: 0.9 (box 0), 0.7 (box 2); box 1 suppressed.  class 1: 0.25 (box 2) and 0.15 (box 1):
    # IoU(box 2, box 1) = 0.667 -> box 1 suppressed; box 0 (0.05) is not > 0.05.
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.7, 0.25]), rtol=1e-5, atol=0)
    assert labels.tolist() == [0, 0, 1]
    assert torch.equal(boxes, proposals[[0, 2, 2]])


def test_fixed_count_equals_normal_mode_when_enough_pass():
    cls_logits, deltas, proposals = _random_detection_inputs(5, num_rois=400, logit_scale=4.0)
    normal = select_detections(cls_logits, deltas, proposals, (300, 400), CFG)
    assert normal[0].shape[0] == 100
    for min_candidates in (3000, 10):
        fixed = select_detections(cls_logits, deltas, proposals, (300, 400),
                                  DetectionConfig(fixed_count=True, min_candidates=min_candidates))
        for a, b in zip(fixed, normal):
            assert torch.equal(a, b)


def test_fixed_count_returns_exactly_max_per_img_when_few_pass():
    cls_logits, deltas, proposals = _random_detection_inputs(6, num_rois=200, logit_scale=1.0)
    cls_logits[:, -1] += 6.0  # background dominates: almost nothing passes 0.05
    normal = select_detections(cls_logits, deltas, proposals, (300, 400), CFG)
    assert normal[0].shape[0] < 100
    boxes, scores, labels = select_detections(cls_logits, deltas, proposals, (300, 400),
                                              DetectionConfig(fixed_count=True))
    assert boxes.shape == (100, 4) and scores.shape == (100,) and labels.shape == (100,)
    assert bool((scores[:-1] >= scores[1:]).all())
    k = normal[0].shape[0]
    assert torch.equal(scores[:k], normal[1]) and torch.equal(labels[:k], normal[2])
    assert torch.equal(boxes[:k], normal[0])


def test_fixed_count_with_fewer_boxes_than_max_per_img():
    cls_logits, deltas, proposals = _random_detection_inputs(7, num_rois=5, num_classes=3)
    boxes, scores, labels = select_detections(cls_logits, deltas, proposals, (300, 400),
                                              DetectionConfig(fixed_count=True))
    assert boxes.shape == (100, 4) and scores.shape == (100,) and labels.shape == (100,)
    assert bool((scores[:-1] >= scores[1:]).all())


# ----------------------------------------------------------------------------- mask selection
class _StubBackbone(nn.Module):
    out_channels = [8, 8, 8, 8]

    def forward(self, x):  # pragma: no cover - not used here
        raise NotImplementedError


def test_mask_probs_are_sigmoid_of_the_labels_logits():
    torch.manual_seed(9)
    model = MaskRCNN(_StubBackbone()).eval()
    features = [torch.randn(2, 256, 64 // s, 96 // s) for s in STRIDES]
    det0 = (torch.tensor([[3.0, 4.0, 40.5, 50.2], [10.0, 10.0, 60.0, 60.0], [0.0, 0.0, 96.0, 64.0]]),
            torch.tensor([0.9, 0.8, 0.7]), torch.tensor([5, 0, 79]))
    det1 = (torch.tensor([[20.0, 5.0, 30.0, 15.0], [1.0, 2.0, 90.0, 60.0]]), torch.tensor([0.6, 0.5]),
            torch.tensor([5, 42]))
    results = model.predict_masks(features, [det0, det1])
    for image, (det, result) in enumerate(zip([det0, det1], results)):
        boxes, scores, labels = det
        assert torch.equal(result.boxes, boxes) and torch.equal(result.scores, scores)
        assert torch.equal(result.labels, labels)
        assert result.masks.shape == (boxes.shape[0], 28, 28)
        rois = torch.cat([torch.full((boxes.shape[0], 1), float(image)), boxes], dim=1)
        levels = _mmdet_map_roi_levels(rois)
        pooled = torch.cat([
            roi_align(features[int(lv)], rois[i:i + 1], 14, 1.0 / STRIDES[int(lv)], 0, True)
            for i, lv in enumerate(levels)
        ])
        with torch.no_grad():
            logits = _mmdet_fcn_mask_head(model.roi_head.mask_head, pooled)
        expected = logits.sigmoid()[range(boxes.shape[0]), labels]
        torch.testing.assert_close(result.masks, expected, rtol=0, atol=1e-6)


def test_full_model_parameter_prefixes_match_checkpoints():
    keys = {k for k in MaskRCNN(_StubBackbone()).state_dict() if not k.startswith("backbone.")}
    for key in ["neck.lateral_convs.0.conv.weight", "neck.fpn_convs.3.conv.bias", "rpn_head.rpn_conv.weight",
                "rpn_head.rpn_cls.weight", "rpn_head.rpn_reg.weight", "roi_head.bbox_head.shared_fcs.1.weight",
                "roi_head.bbox_head.fc_cls.weight", "roi_head.bbox_head.fc_reg.bias",
                "roi_head.mask_head.convs.3.conv.weight", "roi_head.mask_head.upsample.weight",
                "roi_head.mask_head.conv_logits.bias"]:
        assert key in keys, key
    assert not any("roi_extractor" in k for k in keys)  # RoIAlign has no parameters
    assert not any(k.startswith("neck.fpn_convs.4") for k in keys)  # no extra conv for P6
