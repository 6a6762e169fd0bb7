"""Mask R-CNN with FPN, inference only, computing what MMDetection 3.x computes.

The forward pass stops at the 28x28 mask probabilities of each detection, in resized-image
pixels: rescaling to the original image and pasting masks happen in
:mod:`maskbench.pipeline.postprocess`, outside the network, so every runtime (eager, ONNX, TensorRT)
shares the same graph boundary and the same post-processing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import cast

import torch
from torch import nn

from ...zoo import HeadOptions, ModelSpec  # the zoo table holds one per model
from ..detector import Detector, FamilyModel, RawDetections
from ..nms import batched_nms
from .anchors import AnchorGenerator
from .fpn import FPN
from .roi_heads import BBoxHead, DetectionConfig, MaskHead, RoIExtractor, select_detections
from .rpn import ProposalConfig, RPNHead, select_proposals


class RoIHead(nn.Module):
    """Container so parameter names read ``roi_head.bbox_head.*`` / ``roi_head.mask_head.*``."""

    def __init__(self, bbox_head: BBoxHead, mask_head: MaskHead) -> None:
        super().__init__()
        self.bbox_head = bbox_head
        self.mask_head = mask_head
        self.bbox_roi_extractor = RoIExtractor(output_size=7)
        self.mask_roi_extractor = RoIExtractor(output_size=14)


class MaskRCNN(Detector):
    def __init__(
        self,
        backbone: nn.Module,
        heads: HeadOptions = HeadOptions(),
        proposal_config: ProposalConfig = ProposalConfig(),
        detection_config: DetectionConfig = DetectionConfig(),
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = FPN(cast(Sequence[int], backbone.out_channels), 256, num_outs=5)
        self.anchor_generator = AnchorGenerator()
        self.rpn_head = RPNHead(256, self.anchor_generator.num_anchors_per_location)
        self.roi_head = RoIHead(
            BBoxHead(heads.num_classes, heads.bbox_head_convs, heads.bbox_head_fcs, heads.head_norm),
            MaskHead(heads.num_classes, 4, heads.head_norm),
        )
        self.proposal_config = proposal_config
        self.detection_config = detection_config

    def rows_after_nms(self) -> tuple[int, ...]:
        return self.proposal_config.max_per_img, self.detection_config.max_per_img

    # The stages are separate methods so benchmarks can time them one by one.
    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.backbone(images))

    def propose(self, features: Sequence[torch.Tensor], img_shapes: Sequence[tuple[int, int]],
                nms: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor] = batched_nms,
                ) -> list[torch.Tensor]:
        objectness, deltas = self.rpn_head(features)
        anchors = self.anchor_generator.grid_anchors([cast("tuple[int, int]", f.shape[-2:]) for f in features],
                                                     features[0].device,
                                                     features[0].dtype)
        return [
            select_proposals([o[i] for o in objectness], [d[i] for d in deltas], anchors, img_shapes[i],
                             self.proposal_config, nms)[0]
            for i in range(len(img_shapes))
        ]

    def detect_boxes(self, features, proposals, img_shapes):
        rois = _to_rois(proposals)
        if rois.shape[0] == 0:
            empty = rois.new_zeros((0, 4))
            return [(empty, rois.new_zeros(0), rois.new_zeros(0, dtype=torch.long)) for _ in proposals]
        cls_logits, box_deltas = self.roi_head.bbox_head(self.roi_head.bbox_roi_extractor(features, rois))
        results, start = [], 0
        for props, shape in zip(proposals, img_shapes):
            end = start + props.shape[0]
            results.append(select_detections(cls_logits[start:end], box_deltas[start:end], props, shape,
                                             self.detection_config))
            start = end
        return results

    def predict_masks(self, features, detections) -> list[RawDetections]:
        rois = _to_rois([boxes for boxes, _, _ in detections])
        if rois.shape[0] == 0:
            return [RawDetections(b, s, lab, b.new_zeros((0, 28, 28))) for b, s, lab in detections]
        logits = self.roi_head.mask_head(self.roi_head.mask_roi_extractor(features, rois))
        labels = torch.cat([labels for _, _, labels in detections])
        probs = logits[torch.arange(labels.shape[0], device=labels.device), labels].sigmoid()
        results, start = [], 0
        for boxes, scores, labels in detections:
            end = start + boxes.shape[0]
            results.append(RawDetections(boxes, scores, labels, probs[start:end]))
            start = end
        return results

    # What runtimes and benchmarks ask of any detector family (see also RTMDetIns).
    STAGE_NAMES = ("backbone+fpn", "rpn", "box_head", "mask_head")

    def staged_forward(self, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]],
                       lap: Callable[[], None]) -> None:
        """``forward``'s work with ``lap()`` called after each of :data:`STAGE_NAMES` (timing)."""
        features = self.extract_features(images)
        lap()
        proposals = self.propose(features, img_shapes)
        lap()
        detections = self.detect_boxes(features[:4], proposals, img_shapes)
        lap()
        self.predict_masks(features[:4], detections)
        lap()

    def dense_stages(self) -> list[tuple[object, str]]:
        """(owner, attribute) of each dense stage (convolutions, FCs): replacing
        ``getattr(owner, attribute)`` changes what ``forward`` and the stage methods call
        (reduced precision, compilation) without touching their code."""
        heads = self.roi_head
        return [(self, "extract_features"), (self.rpn_head, "forward"), (heads.bbox_head, "forward"),
                (heads.mask_head, "forward")]

    def dense_modules(self) -> list[nn.Module]:
        """The modules whose weights a half-precision copy converts."""
        return [self.backbone, self.neck, self.rpn_head, self.roi_head.bbox_head, self.roi_head.mask_head]

    def export_settings(self) -> dict[str, dict]:
        return {"detection_config": asdict(self.detection_config), "proposal_config": asdict(self.proposal_config)}

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]]) -> list[RawDetections]:
        """``images``: normalised, padded (B, 3, H, W); ``img_shapes``: each image's resized (h, w)."""
        features = self.extract_features(images)
        proposals = self.propose(features, img_shapes)
        detections = self.detect_boxes(features[:4], proposals, img_shapes)
        return self.predict_masks(features[:4], detections)


def _to_rois(boxes_per_image: Sequence[torch.Tensor]) -> torch.Tensor:
    """(K, 5) RoIs: batch index then box, as RoIAlign wants."""
    return torch.cat(
        [torch.cat([b.new_full((b.shape[0], 1), float(i)), b], dim=1) for i, b in enumerate(boxes_per_image)]
    )


def build_mask_rcnn(spec: ModelSpec, fixed_count: bool = False) -> MaskRCNN:
    """A zoo row's Mask R-CNN with PyTorch's default initialisation."""
    heads = cast(HeadOptions, spec.heads)
    return MaskRCNN(spec.build_backbone(), heads, detection_config=DetectionConfig(fixed_count=fixed_count)).eval()


def _calibrate(model, images: torch.Tensor, shapes: list[tuple[int, int]]) -> None:
    from .random_weights import calibrate_mask_rcnn_

    calibrate_mask_rcnn_(model, images, shapes)


FAMILY_MODEL = FamilyModel(build_mask_rcnn, _calibrate)  # the family entry's ``model``
