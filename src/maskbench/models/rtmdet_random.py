"""Random RTMDet-Ins weights that behave like trained ones (the idea of :mod:`random_init`).

After :func:`random_init.randomize_` and with every BatchNorm set from its own input:
- class logits (``rtm_cls`` per level) standardised per class to N(-4, 1.5): about a quarter of
  the 80 x priors scores pass ``score_thr`` 0.05, the top 1000 spread over 0.5..0.95 (N(0, 2.5)
  as in Mask R-CNN saturates sigmoid at 1.0 here: ties at the cut);
- distances (``rtm_reg``, ReLU'd then times the stride) to N(3, 1) strides: boxes of a few
  strides, like objects seen at that level;
- dynamic-conv parameters (``rtm_kernel``) to N(0, 0.5) per channel, then the last layer's
  weights scaled and its bias set so that the mask logits of the selected instances follow
  N(-3, 2) over the image: every instance gets a partial mask (about 7 % of the pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .random_init import BatchNormsFromInput, _OutputStats, measure_and_standardise

CLASS_LOGITS = (-4.0, 1.5)
DISTANCES = (3.0, 1.0)
KERNELS = (0.0, 0.5)
MASK_LOGITS = (-3.0, 2.0)


@torch.no_grad()
def calibrate_rtmdet_(model, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]]) -> None:
    model.eval()
    head = model.bbox_head
    with BatchNormsFromInput(model):
        features = model.extract_features(images)
        layers = [(layer, CLASS_LOGITS) for layer in head.rtm_cls] + [(layer, DISTANCES) for layer in head.rtm_reg] \
            + [(layer, KERNELS) for layer in head.rtm_kernel]
        measure_and_standardise(layers, lambda: model.head_outputs(features))
    _calibrate_mask_logits_(model, features, img_shapes)


def _calibrate_mask_logits_(model, features: list[torch.Tensor], img_shapes: Sequence[tuple[int, int]]) -> None:
    """Scale the last dynamic conv's weights and set its bias (both rows of ``rtm_kernel``)
    so that the selected instances' mask logits have the target mean and spread."""
    head = model.bbox_head
    last_weights, bias_row = head.last_layer_rows()
    for layer in head.rtm_kernel:  # the last layer's bias off while measuring: a constant
        layer.weight[bias_row].zero_()
        layer.bias[bias_row] = 0
    cls_scores, bbox_preds, kernel_preds, mask_feat = model.head_outputs(features)
    stats = _OutputStats()
    for index, shape in enumerate(img_shapes):
        _, _, _, kernels, priors = model.select(cls_scores, bbox_preds, kernel_preds, shape, index)
        logits = model.mask_logits(mask_feat[index], kernels, priors)
        stats(None, None, logits.reshape(1, 1, -1))
    mean, std = (float(v) for v in stats.mean_std())
    scale = MASK_LOGITS[1] / max(std, 1e-6)
    for layer in head.rtm_kernel:
        layer.weight[last_weights] *= scale
        layer.bias[last_weights] *= scale
        layer.bias[bias_row] = MASK_LOGITS[0] - scale * mean
