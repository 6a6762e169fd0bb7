"""Calibration of random Mask R-CNN weights on real frames (why: :mod:`maskbench.models.random_init`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..random_init import BatchNormsFromInput, measure_and_standardise

# (mean, std) each output channel of the last layers is standardised to.
RPN_OBJECTNESS = (0.0, 2.0)
RPN_DELTAS = (0.0, 0.1)
CLASS_LOGITS = (0.0, 2.5)
BOX_DELTAS = (0.0, 0.5)
MASK_LOGITS = (0.0, 2.0)


@torch.no_grad()
def calibrate_mask_rcnn_(model, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]]) -> None:
    """Make a randomly initialised :class:`MaskRCNN` produce trained-looking outputs on ``images``.

    The backbone runs once; each head stage is then measured on the outputs of the stages
    calibrated before it (proposals from the calibrated RPN, masks of the calibrated detections).
    """
    model.eval()
    rpn, bbox, mask = model.rpn_head, model.roi_head.bbox_head, model.roi_head.mask_head
    with BatchNormsFromInput(model):
        features = model.extract_features(images)
        measure_and_standardise([(rpn.rpn_cls, RPN_OBJECTNESS), (rpn.rpn_reg, RPN_DELTAS)],
                                 lambda: model.propose(features, img_shapes))
        proposals = model.propose(features, img_shapes)
        measure_and_standardise([(bbox.fc_cls, CLASS_LOGITS), (bbox.fc_reg, BOX_DELTAS)],
                                 lambda: model.detect_boxes(features[:4], proposals, img_shapes))
        detections = model.detect_boxes(features[:4], proposals, img_shapes)
        measure_and_standardise([(mask.conv_logits, MASK_LOGITS)],
                                 lambda: model.predict_masks(features[:4], detections))
