"""maskbench's batched NMS against a literal transcription of MMCV's CPU algorithm: shifted
boxes, an unstable descending sort for the order (ties broken as MMCV breaks them), greedy
suppression at IoU > threshold, and the per-class loop above 10,000 boxes."""

import torch

from maskbench.models.nms import SPLIT_THRESHOLD, _nms_in_mmcv_order, batched_nms


def _mmcv_nms_cpu(boxes, scores, threshold):
    order = scores.sort(0, True).indices.tolist()
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = [False] * len(order)
    keep = []
    for a, i in enumerate(order):
        if suppressed[a]:
            continue
        keep.append(i)
        for b in range(a + 1, len(order)):
            j = order[b]
            if suppressed[b]:
                continue
            w = (torch.minimum(x2[i], x2[j]) - torch.maximum(x1[i], x1[j])).clamp(min=0)
            h = (torch.minimum(y2[i], y2[j]) - torch.maximum(y1[i], y1[j])).clamp(min=0)
            inter = w * h
            if inter / (areas[i] + areas[j] - inter) > threshold:
                suppressed[b] = True
    return torch.tensor(keep, dtype=torch.int64)


def _mmcv_batched_nms(boxes, scores, idxs, threshold):
    shifted = boxes + (idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes)))[:, None]
    return _mmcv_nms_cpu(shifted, scores, threshold)


def _case(n, ties, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 60 + 2], 1)
    scores = torch.rand(n, generator=g)
    scores[torch.rand(n, generator=g) < ties] = 1.0  # saturated sigmoid: many exact ties
    return boxes, scores, torch.randint(0, 4, (n,), generator=g)


def test_equals_mmcv_with_many_ties():
    boxes, scores, idxs = _case(400, 0.4, seed=0)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), _mmcv_batched_nms(boxes, scores, idxs, 0.5))


def test_equals_mmcv_without_ties():
    boxes, scores, idxs = _case(300, 0.0, seed=1)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.7), _mmcv_batched_nms(boxes, scores, idxs, 0.7))


def test_classes_never_suppress_each_other():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    keep = batched_nms(box, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 1]


def test_split_path_keeps_the_same_set_sorted_by_score():
    """Above 10,000 boxes MMCV loops over classes; the survivors are those of one pass over
    the shifted boxes (classes are far apart), re-sorted by score."""
    boxes, scores, idxs = _case(SPLIT_THRESHOLD + 10, 0.0, seed=2)
    keep = batched_nms(boxes, scores, idxs, 0.5)
    shifted = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    one_pass = _nms_in_mmcv_order(shifted, scores, 0.5)
    assert set(keep.tolist()) == set(one_pass.tolist())
    assert torch.all(scores[keep][:-1] >= scores[keep][1:])
