"""RTMDet-Ins as ONE traceable function: what its exported ONNX graph computes.

``RTMDetIns.forward`` takes data-dependent Python branches (``fixed_count``'s "fewer than
``min_candidates`` pass") and builds its per-instance convolutions with ``groups`` = the number
of detections, which a trace would freeze. For ONE image, without such branches:

- backbone, neck and head: the model's own ``extract_features`` and ``head_outputs``;
- :func:`select_graph`: ``RTMDetIns.select`` branch-free. Candidates are each level's best
  ``nms_pre`` passing ``score_thr`` OR, with ``fixed_count``, among the best ``min_candidates``
  over all levels: the same set as eager in both of its branches (when at least
  ``min_candidates`` pass, the overall best all pass and are within their level's best
  ``nms_pre``; when fewer pass, no level reaches its cap and every passing score is among the
  overall best). Zero-size boxes are dropped, NMS is :func:`graph.shifted_nms`, and the top-up
  with suppressed candidates is one top-k with kept boxes first (as for Mask R-CNN);
- :func:`mask_logits_graph`: the three per-instance 1x1 convolutions as batched matrix
  products (the same sums; rounding may differ in the last bit).

Outputs: ``boxes`` (D, 4), ``scores`` (D,), ``labels`` (D,) and ``mask_logits`` (D, H/8, W/8).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models.rtmdet.model import RTMDetIns, RTMDetTestConfig, decode_distances, point_priors, relative_coordinates
from .graph import shifted_nms
from .graph_batch import image_of, image_shape, per_image


def select_graph(model: RTMDetIns, cls_scores, bbox_preds, kernel_preds, img_shape,
                 config: RTMDetTestConfig) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    sizes = [(int(c.shape[-2]), int(c.shape[-1])) for c in cls_scores]
    priors = torch.cat(point_priors(sizes, model.bbox_head.strides, cls_scores[0].dtype, cls_scores[0].device))
    num_classes = cls_scores[0].shape[1]
    scores = torch.cat([c[0].permute(1, 2, 0).reshape(-1, num_classes).sigmoid() for c in cls_scores])
    distances = torch.cat([b[0].permute(1, 2, 0).reshape(-1, 4) for b in bbox_preds])
    kernels = torch.cat([k[0].permute(1, 2, 0).reshape(-1, k.shape[1]) for k in kernel_preds])
    flat = scores.reshape(-1)
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    start = 0
    for height, width in sizes:  # each level's best nms_pre above the threshold
        count = height * width * num_classes
        level = flat[start:start + count]
        best = level.topk(min(config.nms_pre, count)).indices + start
        chosen[best] = True
        start += count
    chosen = chosen & (flat > config.score_thr)
    if config.fixed_count:
        best = flat.topk(min(config.min_candidates, flat.numel())).indices
        chosen[best] = True
    candidates = torch.nonzero(chosen).reshape(-1)
    prior_index, labels = candidates // num_classes, candidates % num_classes
    boxes = decode_distances(priors[prior_index, :2], distances[prior_index], img_shape)
    if config.min_bbox_size >= 0:
        wide = (boxes[:, 2] - boxes[:, 0] > config.min_bbox_size) & (boxes[:, 3] - boxes[:, 1] > config.min_bbox_size)
        keep_wide = torch.nonzero(wide).reshape(-1)
        candidates, prior_index, labels, boxes = (candidates[keep_wide], prior_index[keep_wide],
                                                  labels[keep_wide], boxes[keep_wide])
    cand_scores = flat[candidates]
    order = shifted_nms(boxes, cand_scores, labels, config.iou_threshold)
    count = config.max_per_img
    if config.fixed_count:  # kept boxes rank above suppressed ones (scores are in [0, 1])
        kept = torch.zeros_like(cand_scores).scatter(0, order, torch.full_like(order, 2, dtype=cand_scores.dtype))
        order = (cand_scores + kept).topk(min(count, int(cand_scores.shape[0]))).indices
        order = order[cand_scores[order].topk(order.shape[0]).indices]  # then by score, as eager's stable sort
    else:
        order = order[:count]
    selected_priors = prior_index[order]
    return (boxes[order], cand_scores[order], labels[order], kernels[selected_priors], priors[selected_priors])


def mask_logits_graph(model: RTMDetIns, mask_feat: Tensor, kernels: Tensor, priors: Tensor) -> Tensor:
    """``RTMDetIns.mask_logits`` for one image with matrix products instead of grouped convs."""
    head = model.bbox_head
    height, width = mask_feat.shape[-2:]
    relative = relative_coordinates(priors, mask_feat, head.strides[0])
    num = priors.shape[0]
    x = torch.cat([relative, mask_feat.reshape(1, -1, height * width).expand(num, -1, -1)], dim=1)
    splits = torch.split(kernels, head.weight_nums + head.bias_nums, dim=1)
    layers = len(head.weight_nums)
    for i in range(layers):
        outputs = head.dyconv_channels if i < layers - 1 else 1
        weight = splits[i].reshape(num, outputs, -1)
        x = torch.bmm(weight, x) + splits[layers + i].reshape(num, outputs, 1)
        if i < layers - 1:
            x = x.relu()
    return x.reshape(num, height, width)


class RTMDetGraph(nn.Module):
    """One image in, ``(boxes, scores, labels, mask_logits)`` out (see the module note); a static
    batch: backbone, neck and head once, the rest per image (:mod:`.graph_batch`).

    ``img_shape``: fixed (h, w) ints, or ``None``: a second input, an int64 tensor ``[h, w]``
    (``(B, 2)`` for a batch)."""

    def __init__(self, model: RTMDetIns, img_shape: tuple[int, int] | None) -> None:
        super().__init__()
        self.model = model
        self.img_shape = None if img_shape is None else (int(img_shape[0]), int(img_shape[1]))

    def forward(self, images: Tensor, img_shape: Tensor | None = None):
        model = self.model
        cls_scores, bbox_preds, kernel_preds, mask_feat = model.head_outputs(model.extract_features(images))
        count = images.shape[0]

        def detect(i: int) -> tuple[Tensor, ...]:
            boxes, scores, labels, kernels, priors = select_graph(
                model, image_of(cls_scores, i, count), image_of(bbox_preds, i, count),
                image_of(kernel_preds, i, count), image_shape(self.img_shape, img_shape, i), model.detection_config)
            return boxes, scores, labels, mask_logits_graph(model, mask_feat[i], kernels, priors)

        return per_image(count, detect)
