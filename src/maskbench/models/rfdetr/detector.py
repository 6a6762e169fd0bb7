"""RF-DETR-Seg as a maskbench :class:`~maskbench.models.detector.Detector`: the family's torch side.

The network (:class:`.model.RFDETRSeg`, rfdetr's parameter names) gains what every runtime and
the benchmark use: ``forward(images, img_shapes) -> RawDetections`` with rfdetr's top-k inside
(the top ``num_select`` (query, class) pairs by sigmoid score, ties to the lower index as
rfdetr's stable sort and ONNX's ``TopK`` break them), boxes in input pixels, contiguous labels
(-1 for a COCO slot without a class: the decoding drops them) and each pair's mask logits; the
stages for per-stage timing; the projector as the neck. Random weights are rfdetr's parity
recipe (:mod:`.random_weights`), so the registry's random model is the one the oracle ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import cast

import torch
from torch import Tensor, nn

from ...zoo import ModelSpec
from ...zoo.rfdetr_sizes import RFDETRSegSize
from ..detector import Detector, FamilyModel, RawDetections
from .backbone import Backbone
from .decoder import reparam_boxes
from .model import RFDETRSeg
from .postprocess import LABEL_BY_SLOT
from .random_weights import RECIPE, random_state_dict


@dataclass(frozen=True)
class RFDETRTestConfig:
    """What the detections depend on after the network: rfdetr's ``num_select`` and the mask
    threshold (0.5 on the sigmoid: rfdetr's ``logits > 0``)."""

    num_select: int
    mask_thr_binary: float = 0.5


def top_pairs(scores: Tensor, count: int) -> Tensor:
    """Indices of the ``count`` best scores, ties to the lower index: rfdetr's stable sort in
    eager mode, ``TopK`` in an exported graph (whose tie rule is the same, by the ONNX spec)."""
    if torch.onnx.is_in_onnx_export():
        return torch.topk(scores, count).indices
    return torch.argsort(scores, descending=True, stable=True)[:count]


class RFDETRSegDetector(RFDETRSeg, Detector):
    STAGE_NAMES = ("backbone", "projector", "decoder", "mask_head", "select")

    def __init__(self, size: RFDETRSegSize, backbone: nn.Module | None = None) -> None:
        super().__init__(size)
        if backbone is not None:
            self.backbone = nn.ModuleList([backbone])
        self.detection_config = RFDETRTestConfig(size.num_select)
        self.register_buffer("label_by_slot", torch.from_numpy(LABEL_BY_SLOT), persistent=False)

    @property
    def neck(self) -> nn.Module:  # type: ignore[override]  # a view of the projector, not a second registration
        return self.vit_and_projector().projector

    def vit_and_projector(self) -> Backbone:
        return cast(Backbone, self.backbone[0])

    def extract_features(self, images: Tensor) -> list[Tensor]:
        return [self.vit_and_projector()(images)]

    def select(self, logits: Tensor, boxes: Tensor, mask_logits: Tensor,
               input_hw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One image's (Q, 91) logits, (Q, 4) cxcywh boxes, (Q, h, w) masks -> the top
        ``num_select`` pairs: xyxy boxes in input pixels, scores, labels, mask logits."""
        scores = logits.sigmoid().reshape(-1)
        top = top_pairs(scores, min(self.detection_config.num_select, scores.shape[0]))
        queries = torch.div(top, logits.shape[-1], rounding_mode="floor")
        cx, cy, w, h = boxes[queries].unbind(-1)
        w, h = w.clamp(min=0.0), h.clamp(min=0.0)
        corners = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
        scale = corners.new_tensor([input_hw[1], input_hw[0], input_hw[1], input_hw[0]])
        labels = cast(Tensor, self.label_by_slot)[top % logits.shape[-1]]
        return corners * scale, scores[top], labels, mask_logits[queries]

    @torch.inference_mode()
    def forward(self, images: Tensor, img_shapes: Sequence[tuple[int, int]]) -> list[RawDetections]:  # type: ignore[override]
        logits, boxes, masks = self.network(images)
        hw = (images.shape[-2], images.shape[-1])
        return [RawDetections(*self.select(logits[i], boxes[i], masks[i], hw)) for i in range(images.shape[0])]

    def staged_forward(self, images: Tensor, img_shapes: Sequence[tuple[int, int]], lap: Callable[[], None]) -> None:
        backbone = self.vit_and_projector()
        maps = backbone.encoder(images)
        lap()
        features = backbone.projector(maps)
        lap()
        queries, reference = self.transformer(features, self.query_feat.weight, self.refpoint_embed.weight)
        boxes, logits = reparam_boxes(self.bbox_embed(queries), reference), self.class_embed(queries)
        lap()
        masks = self.segmentation_head(features, queries, (images.shape[2], images.shape[3]))
        lap()
        for i in range(images.shape[0]):
            self.select(logits[i], boxes[i], masks[i], (images.shape[2], images.shape[3]))
        lap()

    def dense_stages(self) -> list[tuple[object, str]]:
        return [(module, "forward") for module in self.dense_modules()]

    def dense_modules(self) -> list[nn.Module]:
        """The ViT, the projector, the decoder and the mask head; the class and box heads (two
        small layers on 100-300 queries) stay in float32, like the top-k."""
        backbone = self.vit_and_projector()
        return [backbone.encoder, backbone.projector, self.transformer, self.segmentation_head]

    def export_settings(self) -> dict[str, dict]:
        return {"detection_config": asdict(self.detection_config)}


def build(spec: ModelSpec, fixed_count: bool = False) -> RFDETRSegDetector:
    """The size of the row (its ``heads``); always ``num_select`` detections (top-k, no NMS)."""
    size = spec.heads
    assert isinstance(size, RFDETRSegSize)
    return RFDETRSegDetector(size, spec.build_backbone()).eval()


@torch.no_grad()
def randomize_(model: RFDETRSegDetector, seed: int) -> None:
    """rfdetr's parity recipe (:func:`.random_weights.random_state_dict`), in the model's dtype."""
    state = model.state_dict()
    weights = random_state_dict({k: tuple(v.shape) for k, v in state.items() if v.is_floating_point()}, seed)
    model.load_state_dict({k: v.to(state[k].dtype) for k, v in weights.items()})


def calibrate_(model: RFDETRSegDetector, images: Tensor, shapes: list[tuple[int, int]]) -> None:
    """Nothing to measure: the recipe's scales already give spread scores and masks on all
    detections (checked on every fixture by the oracle; docs/rfdetr.md)."""


def read_checkpoint(path) -> dict[str, Tensor]:
    from .checkpoint import load_rfdetr_state_dict

    return load_rfdetr_state_dict(path)


FAMILY_MODEL = FamilyModel(build, calibrate_, randomize_=randomize_, read_checkpoint=read_checkpoint,
                           random_recipe=f"rfdetr's parity recipe {RECIPE}")
