"""FPN, RPN head and proposal selection against MMDetection 3.3 (``FPN``, ``RPNHead``).

Re-derived from MMDetection:
- FPN (``add_extra_convs=False``, ``num_outs=5``): laterals = 1x1 convs; top-down
  ``lat[i-1] += F.interpolate(lat[i], size=lat[i-1].shape[2:], mode='nearest')`` using the
  already-updated ``lat[i]``; outputs = 3x3 convs; P6 = ``F.max_pool2d(P5_out, 1, stride=2)``.
- RPN test time (``RPNHead._predict_by_feat_single`` + ``_bbox_post_process``): per level,
  ``permute(1, 2, 0)`` flatten, sigmoid, if ``0 < nms_pre < n`` keep the first ``nms_pre`` of a
  descending *sort*; decode all levels against the resized ``img_shape``; drop boxes with
  ``w <= min_bbox_size`` or ``h <= min_bbox_size``; mmcv ``batched_nms`` with the level id as
  class (boxes shifted by ``level * (max_coordinate + 1)``, then one NMS); keep ``max_per_img``.
mmcv's CPU ``nms`` kernel (sort by score, suppress ``iou > thr``, float32 IoU) is the same
arithmetic as ``torchvision.ops.nms``, which stands in for it below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import nms

from maskbench.models.mask_rcnn.anchors import AnchorGenerator
from maskbench.models.mask_rcnn.fpn import FPN
from maskbench.models.mask_rcnn.rpn import ProposalConfig, RPNHead, select_proposals


# ----------------------------------------------------------------------------- references
def _mmdet_fpn(fpn: FPN, inputs):
    laterals = [F.conv2d(x, m.conv.weight, m.conv.bias) for x, m in zip(inputs, fpn.lateral_convs)]
    for i in range(len(laterals) - 1, 0, -1):
        prev_shape = laterals[i - 1].shape[2:]
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=prev_shape, mode="nearest")
    outs = [F.conv2d(lat, m.conv.weight, m.conv.bias, padding=1) for lat, m in zip(laterals, fpn.fpn_convs)]
    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs


def _mmdet_delta2bbox(rois, deltas, max_shape):
    pxy = (rois[:, :2] + rois[:, 2:]) * 0.5
    pwh = rois[:, 2:] - rois[:, :2]
    dwh = deltas[:, 2:].clamp(min=-np.abs(np.log(16 / 1000)), max=np.abs(np.log(16 / 1000)))
    gxy = pxy + pwh * deltas[:, :2]
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
    bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes


def _mmcv_batched_nms(boxes, scores, idxs, iou_threshold):
    """mmcv.ops.batched_nms (< split_thr boxes): one NMS on class-offset boxes; keep sorted by score."""
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    keep = nms(boxes + offsets[:, None], scores, iou_threshold)
    return keep


def _mmdet_rpn_select(cls_scores, bbox_preds, priors, img_shape, nms_pre=1000, max_per_img=1000,
                      iou_threshold=0.7, min_bbox_size=0):
    mlvl_bbox_preds, mlvl_priors, mlvl_scores, level_ids = [], [], [], []
    for level_idx, (cls_score, bbox_pred, prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
        bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        cls_score = cls_score.permute(1, 2, 0).reshape(-1, 1)
        scores = torch.squeeze(cls_score.sigmoid())
        if 0 < nms_pre < scores.shape[0]:
            ranked_scores, rank_inds = scores.sort(descending=True)
            topk_inds = rank_inds[:nms_pre]
            scores = ranked_scores[:nms_pre]
            bbox_pred = bbox_pred[topk_inds, :]
            prior = prior[topk_inds]
        mlvl_bbox_preds.append(bbox_pred)
        mlvl_priors.append(prior)
        mlvl_scores.append(scores)
        level_ids.append(scores.new_full((scores.size(0),), level_idx, dtype=torch.long))
    bboxes = _mmdet_delta2bbox(torch.cat(mlvl_priors), torch.cat(mlvl_bbox_preds), img_shape)
    scores = torch.cat(mlvl_scores)
    ids = torch.cat(level_ids)
    if min_bbox_size >= 0:
        w, h = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
        valid = (w > min_bbox_size) & (h > min_bbox_size)
        if not valid.all():
            bboxes, scores, ids = bboxes[valid], scores[valid], ids[valid]
    keep = _mmcv_batched_nms(bboxes, scores, ids, iou_threshold)
    return bboxes[keep][:max_per_img], scores[keep][:max_per_img]


# ----------------------------------------------------------------------------- FPN
def test_fpn_parameter_names_and_shapes():
    fpn = FPN([256, 512, 1024, 2048], 256, num_outs=5)
    shapes = {k: tuple(v.shape) for k, v in fpn.state_dict().items()}
    expected = {}
    for i, c in enumerate([256, 512, 1024, 2048]):
        expected[f"lateral_convs.{i}.conv.weight"] = (256, c, 1, 1)
        expected[f"lateral_convs.{i}.conv.bias"] = (256,)
        expected[f"fpn_convs.{i}.conv.weight"] = (256, 256, 3, 3)
        expected[f"fpn_convs.{i}.conv.bias"] = (256,)
    assert shapes == expected  # no extra convs for P6


@pytest.mark.parametrize("hw", [(25, 37), (26, 33), (32, 32)])
def test_fpn_forward_equals_mmdet_with_odd_sizes(hw):
    torch.manual_seed(0)
    in_channels = [4, 8, 16, 32]
    fpn = FPN(in_channels, 6, num_outs=5).eval()
    h, w = hw
    sizes = [(h, w)]
    for _ in range(3):  # a stride-2 backbone stage: ceil(h / 2)
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    inputs = [torch.randn(2, c, sh, sw) for c, (sh, sw) in zip(in_channels, sizes)]
    with torch.no_grad():
        got = fpn(inputs)
        expected = _mmdet_fpn(fpn, inputs)
    assert len(got) == 5
    for level, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, level
        torch.testing.assert_close(g, e, rtol=0, atol=1e-6)
    # P6 is a plain stride-2 subsampling of P5's output (kernel 1 max-pool), size ceil(n / 2).
    assert torch.equal(got[4], got[3][..., ::2, ::2])
    assert got[4].shape[-2:] == ((sizes[3][0] + 1) // 2, (sizes[3][1] + 1) // 2)


def test_fpn_top_down_is_nearest_to_lateral_size():
    """Hand-check on odd sizes: index floor(i * in / out) (PyTorch 'nearest'), not 'nearest-exact'."""
    fpn = FPN([1, 1], 1, num_outs=2).eval()
    with torch.no_grad():
        for m in list(fpn.lateral_convs) + list(fpn.fpn_convs):
            m.conv.weight.zero_()
            m.conv.bias.zero_()
        fpn.lateral_convs[0].conv.weight.fill_(0.0)  # P4-level lateral contributes 0
        fpn.lateral_convs[1].conv.weight.fill_(1.0)  # top lateral = its input
        fpn.fpn_convs[0].conv.weight[0, 0, 1, 1] = 1.0  # 3x3 identity
        top = torch.arange(4 * 3, dtype=torch.float32).reshape(1, 1, 4, 3)
        out = fpn([torch.zeros(1, 1, 7, 5), top])[0][0, 0]
    rows = [0, 0, 1, 1, 2, 2, 3]  # floor(i * 4 / 7)
    cols = [0, 0, 1, 1, 2]  # floor(j * 3 / 5)
    expected = top[0, 0][rows][:, cols]
    assert torch.equal(out, expected)


# ----------------------------------------------------------------------------- RPN head
def test_rpn_head_parameter_names_and_forward():
    head = RPNHead(256, 3)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "rpn_conv.weight": (256, 256, 3, 3), "rpn_conv.bias": (256,),
        "rpn_cls.weight": (3, 256, 1, 1), "rpn_cls.bias": (3,),
        "rpn_reg.weight": (12, 256, 1, 1), "rpn_reg.bias": (12,),
    }
    torch.manual_seed(1)
    small = RPNHead(8, 3)
    feats = [torch.randn(1, 8, 9, 7), torch.randn(1, 8, 5, 4)]
    with torch.no_grad():
        cls, reg = small(feats)
        for f, c, r in zip(feats, cls, reg):
            hidden = F.relu(F.conv2d(f, small.rpn_conv.weight, small.rpn_conv.bias, padding=1))
            assert torch.equal(c, F.conv2d(hidden, small.rpn_cls.weight, small.rpn_cls.bias))
            assert torch.equal(r, F.conv2d(hidden, small.rpn_reg.weight, small.rpn_reg.bias))
            assert c.shape[1] == 3 and r.shape[1] == 12


# ----------------------------------------------------------------------------- proposals
SMALL_SIZES = [(8, 10), (4, 5), (2, 3), (1, 2), (1, 1)]


def _random_rpn_inputs(seed: int, sizes=SMALL_SIZES):
    g = torch.Generator().manual_seed(seed)
    objectness = [torch.randn(3, h, w, generator=g) * 2 for h, w in sizes]
    deltas = [torch.randn(12, h, w, generator=g) * 0.6 for h, w in sizes]
    anchors = AnchorGenerator().grid_anchors(sizes)
    return objectness, deltas, anchors


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("config", [ProposalConfig(), ProposalConfig(nms_pre=40, max_per_img=50)],
                         ids=["default", "nms_pre40_max50"])
def test_select_proposals_equals_mmdet(seed, config):
    objectness, deltas, anchors = _random_rpn_inputs(seed)
    img_shape = (29, 37)  # resized image (h, w) inside a 32 x 40 padded input
    boxes, scores = select_proposals(objectness, deltas, anchors, img_shape, config)
    exp_boxes, exp_scores = _mmdet_rpn_select(objectness, deltas, anchors, img_shape, config.nms_pre,
                                              config.max_per_img, config.iou_threshold, config.min_bbox_size)
    assert boxes.shape[0] > 5
    assert torch.equal(boxes, exp_boxes)
    assert torch.equal(scores, exp_scores)
    assert bool((scores[:-1] >= scores[1:]).all())
    assert float(boxes[:, 0::2].max()) <= 37 and float(boxes[:, 1::2].max()) <= 29


def test_objectness_flatten_order_hand_check():
    """Channel a at (y, x) scores anchor (y * W + x) * A + a: permute(1, 2, 0), not (0, 1, 2)."""
    gen = AnchorGenerator()
    height, width = 2, 3
    anchors = gen.grid_anchors([(1, 1), (1, 1), (height, width), (1, 1), (1, 1)])[2:3]  # stride 16
    objectness = torch.full((3, height, width), -10.0)
    objectness[2, 1, 0] = 5.0  # ratio-2 anchor (tall) at y=1, x=0 -> centre (0, 16)
    objectness[0, 0, 2] = 3.0  # ratio-0.5 anchor (wide) at y=0, x=2 -> centre (32, 0)
    boxes, scores = select_proposals([objectness], [torch.zeros(12, height, width)], anchors, (200, 200))
    # stride 16 * scale 8 = 128: tall anchor 128/sqrt2 x 128*sqrt2 = 90.51 x 181.02
    half_short, half_long = 64 / float(np.sqrt(2)), 64 * float(np.sqrt(2))
    torch.testing.assert_close(boxes[0], torch.tensor([0.0, 0.0, half_short, 16 + half_long]), rtol=0, atol=1e-4)
    torch.testing.assert_close(boxes[1], torch.tensor([0.0, 0.0, 32 + half_long, half_short]), rtol=0, atol=1e-4)
    torch.testing.assert_close(scores[:2], torch.sigmoid(torch.tensor([5.0, 3.0])), rtol=0, atol=0)


def test_nms_is_per_level():
    box = torch.tensor([[10.0, 10.0, 50.0, 50.0]])
    logits = torch.tensor([2.0, 1.0, 0.0])
    # level 0: two identical boxes (A=1, H=1, W=2); level 1: the same box again
    objectness = [logits[:2].view(1, 1, 2), logits[2:].view(1, 1, 1)]
    deltas = [torch.zeros(4, 1, 2), torch.zeros(4, 1, 1)]
    anchors = [box.repeat(2, 1), box.clone()]
    boxes, scores = select_proposals(objectness, deltas, anchors, (100, 100))
    # the level-0 duplicate is suppressed, the level-1 copy is not
    assert torch.equal(scores, torch.sigmoid(torch.tensor([2.0, 0.0])))
    assert torch.equal(boxes, box.repeat(2, 1))


def test_min_size_filter_and_clipping_to_resized_shape():
    anchors = [torch.tensor([
        [1400.0, 10.0, 1500.0, 50.0],  # right of the 1333-wide resized image: clipped to zero width
        [10.0, 760.0, 50.0, 790.0],  # below the 750-high image (but inside the 768 padding): zero height
        [1300.0, 700.0, 1400.0, 800.0],  # clipped to (1333, 750), not to the padded (1344, 768)
        [100.0, 100.0, 100.01, 100.02],  # tiny but positive: kept (min_bbox_size 0 means > 0)
    ])]
    objectness = [torch.tensor([4.0, 3.0, 2.0, 1.0]).view(1, 1, 4)]
    boxes, scores = select_proposals(objectness, [torch.zeros(4, 1, 4)], anchors, (750, 1333))
    assert boxes.shape == (2, 4)
    assert torch.equal(boxes[0], torch.tensor([1300.0, 700.0, 1333.0, 750.0]))
    torch.testing.assert_close(boxes[1], anchors[0][3], rtol=0, atol=1e-4)
    assert torch.equal(scores, torch.sigmoid(torch.tensor([2.0, 1.0])))


def test_max_per_img_keeps_best_after_nms():
    n = 20
    x = torch.arange(n, dtype=torch.float32) * 20
    anchors = [torch.stack([x, torch.zeros(n), x + 10, torch.full((n,), 10.0)], dim=1)]  # disjoint
    logits = torch.randn(n, generator=torch.Generator().manual_seed(5))
    boxes, scores = select_proposals([logits.view(1, 1, n)], [torch.zeros(4, 1, n)], anchors, (100, 1000),
                                     ProposalConfig(max_per_img=5))
    order = logits.argsort(descending=True)[:5]
    assert torch.equal(scores, logits[order].sigmoid())
    torch.testing.assert_close(boxes, anchors[0][order], rtol=0, atol=1e-5)


def test_nms_pre_applies_per_level():
    def level(xs, logits):
        x = torch.tensor(xs, dtype=torch.float32)
        anchors = torch.stack([x, torch.zeros_like(x), x + 10, torch.full_like(x, 10.0)], dim=1)
        n = len(xs)
        return torch.tensor(logits).view(1, 1, n), torch.zeros(4, 1, n), anchors

    l0 = level([0, 20, 40, 60], [-2.0, 3.0, 0.0, 1.0])
    l1 = level([100, 120, 140], [-1.0, -3.0, 2.0])
    objectness, deltas, anchors = zip(l0, l1)
    boxes, scores = select_proposals(list(objectness), list(deltas), list(anchors), (100, 1000),
                                     ProposalConfig(nms_pre=2))
    # level 0 keeps logits 3 and 1, level 1 keeps 2 and -1 (its -3 is cut even though it would
    # beat nothing on level 0); final order is by score across levels.
    assert torch.equal(scores, torch.sigmoid(torch.tensor([3.0, 2.0, 1.0, -1.0])))
    torch.testing.assert_close(boxes[:, 0], torch.tensor([20.0, 140.0, 60.0, 100.0]), rtol=0, atol=1e-5)


def _over_1000_boxes_case():
    g = torch.Generator().manual_seed(11)
    n0 = 1000
    xy = torch.rand(n0, 2, generator=g) * torch.tensor([900.0, 500.0])
    level0 = torch.cat([xy, xy + 5 + torch.rand(n0, 2, generator=g) * 60], dim=1)
    level0[0] = torch.tensor([900.0, 500.0, 1200.0, 700.0])  # clipped to x2 = 1000: max coordinate 1000
    # Level 1: box B covers 70.00003 / 100 of box A. Raw IoU = 0.7000003 > 0.7 -> suppressed;
    # shifted by 1 * (1000 + 1) its x2 rounds to 1071.0, IoU = 0.7 exactly -> kept.
    level1 = torch.tensor([[0.0, 0.0, 100.0, 10.0], [0.0, 0.0, 70.00003051757812, 10.0]])
    objectness = [torch.randn(1, 1, n0, generator=g), torch.tensor([3.0, 2.0]).view(1, 1, 2)]
    deltas = [torch.zeros(4, 1, n0), torch.zeros(4, 1, 2)]
    return objectness, deltas, [level0, level1], (600, 1000)


def test_over_1000_boxes_construction_mmdet_keeps_the_near_threshold_pair():
    """Checks the construction used by the NMS-arithmetic test below (reference arithmetic only)."""
    objectness, deltas, anchors, img_shape = _over_1000_boxes_case()
    pair = anchors[1]
    s = torch.tensor([0.9, 0.8])
    assert len(nms(pair, s, 0.7)) == 1  # raw coordinates: suppressed
    assert len(nms(pair + 1001.0, s, 0.7)) == 2  # mmcv's shifted coordinates: kept
    exp_boxes, _ = _mmdet_rpn_select(objectness, deltas, anchors, img_shape)
    assert sum(a.shape[0] for a in anchors) > 1000  # all >= 5 px, so > 1000 boxes enter NMS
    assert bool((exp_boxes == pair[0]).all(dim=1).any()) and bool((exp_boxes == pair[1]).all(dim=1).any())


def test_select_proposals_over_1000_boxes_equals_mmdet_nms_arithmetic():
    objectness, deltas, anchors, img_shape = _over_1000_boxes_case()
    exp_boxes, exp_scores = _mmdet_rpn_select(objectness, deltas, anchors, img_shape)
    boxes, scores = select_proposals(objectness, deltas, anchors, img_shape)
    assert torch.equal(scores, exp_scores)
    assert torch.equal(boxes, exp_boxes)
