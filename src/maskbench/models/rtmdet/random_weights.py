"""Random RTMDet-Ins weights that behave like trained ones (the idea of :mod:`random_init`).

After :func:`random_init.randomize_` and with every BatchNorm set from its own input:
- class logits (``rtm_cls`` per level): standardised per class, then one affine map for all
  levels puts the best score over the calibration frames at sigmoid(6) = 0.9975 and the
  lowest of the frames' 150th best at sigmoid(-2) = 0.12, so every frame keeps 100 detections
  above ``score_thr`` 0.05 without a score reaching 1.0. Random networks have heavy tails (a
  class logit 17 standard deviations above its mean, measured): standardising alone left every
  top-100 score at 1.0; and one frame's logits can sit far above another's;
- distances (``rtm_reg``, ReLU'd then times the stride): N(3, 1) strides, boxes of a few
  strides, like objects seen at that level;
- dynamic mask kernels (``rtm_kernel``): random dynamic convs give every instance the same
  half-plane or nothing, so the kernels' biases carry a fixed small network that computes
  ``2 - 5 * (|dx| + |dy|)`` over the relative coordinates (in units of 8 strides): a diamond
  mask around each instance's prior, a few strides wide, with the instance's own (scaled-down)
  random kernel and the prototypes (standardised to N(0, 1): unscaled, they outweighed the
  diamond and put masks away from their boxes) perturbing it. Every detection gets a partial
  mask, mostly inside its box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..random_init import BatchNormsFromInput, measure_and_standardise

CLASS_LOGITS = (0.0, 1.0)  # per class, before the common affine map
BEST_LOGIT, CUT_LOGIT, CUT_RANK = 6.0, -2.0, 150
DISTANCES = (3.0, 1.0)
KERNELS = (0.0, 0.01)  # the random part of every dynamic-conv parameter (heavy-tailed: 10x at the top scores)
PROTOTYPES = (0.0, 1.0)  # the mask features the dynamic convs read, per channel
MASK_CENTRE, MASK_SLOPE = 2.0, 5.0


@torch.no_grad()
def calibrate_rtmdet_(model, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]]) -> None:
    model.eval()
    head = model.bbox_head
    with BatchNormsFromInput(model):
        features = model.extract_features(images)
        layers = [(layer, CLASS_LOGITS) for layer in head.rtm_cls] + [(layer, DISTANCES) for layer in head.rtm_reg] \
            + [(layer, KERNELS) for layer in head.rtm_kernel] + [(head.mask_head.projection, PROTOTYPES)]
        measure_and_standardise(layers, lambda: model.head_outputs(features))
        cls_scores = model.head_outputs(features)[0]
    _spread_class_logits_(head, cls_scores)
    _restandardise_at_detections_(model, features, img_shapes)
    _design_mask_kernels_(head)


def _restandardise_at_detections_(model, features: list[torch.Tensor], img_shapes: Sequence[tuple[int, int]]) -> None:
    """Distances and kernels standardised again over the priors that are detected: the top
    scores of a random network are outliers in every channel (measured: distances of 0, the
    prior at the box's corner; kernel entries 5x their spread), so statistics over all priors
    do not describe the instances that are kept."""
    head = model.bbox_head
    reg_out: list[torch.Tensor] = []  # rtm_reg's outputs before the ReLU, caught as the head runs once
    hooks = [layer.register_forward_hook(lambda _m, _i, out: reg_out.append(out)) for layer in head.rtm_reg]
    try:
        outputs = model.head_outputs(features)
    finally:
        for hook in hooks:
            hook.remove()
    kernel_out = outputs[2]
    picked: dict[int, list[torch.Tensor]] = {}
    for index, shape in enumerate(img_shapes):
        priors = model.select(outputs[0], outputs[1], outputs[2], shape, index)[4]
        for level, stride in enumerate(head.strides):
            mine = priors[priors[:, 2] == stride]
            width = reg_out[level].shape[-1]
            cells = (mine[:, 1] / stride).long() * width + (mine[:, 0] / stride).long()
            picked.setdefault(level, []).append(index * reg_out[level].shape[-2] * width + cells)
    for level, cells in picked.items():
        cells_all = torch.cat(cells)
        if cells_all.numel() < 2:
            continue
        for layer, values, target in ((head.rtm_reg[level], reg_out[level], DISTANCES),
                                      (head.rtm_kernel[level], kernel_out[level], KERNELS)):
            flat = values.permute(1, 0, 2, 3).reshape(values.shape[1], -1)[:, cells_all].double()
            mean, std = flat.mean(dim=1), flat.std(dim=1).clamp(min=1e-6)
            scale = (target[1] / std).to(layer.weight.dtype)
            layer.weight.mul_(scale.view(-1, 1, 1, 1))
            layer.bias.copy_((layer.bias - mean.to(layer.bias.dtype)) * scale + target[0])


def _spread_class_logits_(head, cls_scores: Sequence[torch.Tensor]) -> None:
    per_image = torch.cat([c.reshape(c.shape[0], -1) for c in cls_scores], dim=1).double()
    best = per_image.max()
    cut = per_image.topk(min(CUT_RANK, per_image.shape[1]), dim=1).values[:, -1].min()
    scale = (BEST_LOGIT - CUT_LOGIT) / max(float(best - cut), 1e-6)
    shift = CUT_LOGIT - scale * float(cut)
    for layer in head.rtm_cls:
        layer.weight.mul_(scale)
        layer.bias.mul_(scale).add_(shift)


def _design_mask_kernels_(head) -> None:
    """Add to the biases of the kernel entries that make the diamond (see the module note).

    Layout (MMDetection's ``parse_dynamic_params``): all layers' weights, then all biases; layer
    ``i``'s weights are (out, in) row-major; layer 0's inputs are (dx, dy, prototypes...)."""
    ins0 = head.num_prototypes + 2
    channels = head.dyconv_channels
    w0, w1, w2 = 0, head.weight_nums[0], head.weight_nums[0] + head.weight_nums[1]
    designed = {
        # layer 0: relu(dx), relu(-dx), relu(dy), relu(-dy) in channels 0..3
        w0 + 0 * ins0 + 0: 1.0, w0 + 1 * ins0 + 0: -1.0, w0 + 2 * ins0 + 1: 1.0, w0 + 3 * ins0 + 1: -1.0,
        # layer 1: channel 0 = |dx| + |dy|
        **{w1 + 0 * channels + k: 1.0 for k in range(4)},
        # layer 2: logit = centre - slope * channel 0
        w2 + 0: -MASK_SLOPE,
        head.num_gen_params - 1: MASK_CENTRE,
    }
    index = torch.tensor(sorted(designed))
    values = torch.tensor([designed[i] for i in sorted(designed)])
    for layer in head.rtm_kernel:  # on top of the standardised (zero-mean) random part
        layer.bias[index] += values.to(layer.bias.dtype)
