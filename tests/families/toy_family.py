"""A toy model family registered from outside maskbench: its entry, its rows and its code only.

Imported through ``MASKBENCH_FAMILIES=toy_family`` (this folder on ``PYTHONPATH``), as a third
party's family would be. It checks that adding a family touches no maskbench module: the
network, its export graph, its stage and feature rules live here; its mask decoding reuses
Mask R-CNN's box-relative pasting by path.

The network: a strided conv backbone, a one-level "neck", a 1x1 head giving a box and 80 class
logits per location; the best 100 locations are the detections (a fixed count, no NMS), each
with a 28x28 mask from a learned template shifted by its score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from maskbench.models.detector import Detector, FamilyModel, RawDetections
from maskbench.zoo import FamilyEntry, InputFormat, ModelSpec, WeightsMeta, register_family, register_model

DETECTIONS = 100
STRIDE = 8


@dataclass(frozen=True)
class ToyOptions:
    width: int = 8
    num_classes: int = 80


@dataclass(frozen=True)
class ToyConfig:
    mask_thr_binary: float = 0.5
    max_per_img: int = DETECTIONS


class ToyNeck(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.relu(self.conv(x))]


class ToyDetector(Detector):
    STAGE_NAMES = ("backbone+fpn", "toy_head")

    def __init__(self, options: ToyOptions) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, options.width, 3, stride=STRIDE, padding=1), nn.ReLU())
        self.neck = ToyNeck(options.width)
        self.head = nn.Conv2d(options.width, 4 + options.num_classes, 1)
        self.mask_template = nn.Parameter(torch.zeros(1, 28, 28))
        self.detection_config = ToyConfig()

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.backbone(images))

    def detect(self, features: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        out = self.head(features[0])
        results = []
        for i in range(out.shape[0]):
            deltas, logits = out[i, :4].flatten(1).T, out[i, 4:].flatten(1).T  # (HW, 4), (HW, C)
            width = out.shape[-1]
            scores, labels = logits.sigmoid().max(dim=1)
            top = scores.topk(DETECTIONS).indices
            ys, xs = (top // width).to(deltas.dtype), (top % width).to(deltas.dtype)
            centres = torch.stack([xs, ys, xs, ys], dim=1) * STRIDE + STRIDE / 2
            half = deltas[top].clamp(-3, 3).exp() * STRIDE
            boxes = centres + torch.cat([-half[:, :2], half[:, 2:]], dim=1)
            results.append((boxes, scores[top], labels[top]))
        return results

    def masks(self, scores: torch.Tensor) -> torch.Tensor:
        return (self.mask_template + (scores[:, None, None] - 0.5) * 4).sigmoid()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]]) -> list[RawDetections]:
        return [RawDetections(b, s, lab, self.masks(s)) for b, s, lab in self.detect(self.extract_features(images))]

    def staged_forward(self, images, img_shapes, lap: Callable[[], None]) -> None:
        features = self.extract_features(images)
        lap()
        for _, scores, _ in self.detect(features):
            self.masks(scores)
        lap()

    def dense_stages(self) -> list[tuple[object, str]]:
        return [(self, "extract_features"), (self.head, "forward")]

    def dense_modules(self) -> list[nn.Module]:
        return [self.backbone, self.neck, self.head]

    def export_settings(self) -> dict[str, dict]:
        return {"detection_config": asdict(self.detection_config)}


class ToyGraph(nn.Module):
    """The export graph: one image in, the four outputs out (``img_shape`` unused: a stretch graph)."""

    def __init__(self, model: ToyDetector, img_shape: tuple[int, int] | None) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, img_shape: torch.Tensor | None = None):
        raw = self.model(images, [(images.shape[-2], images.shape[-1])])[0]
        return raw.boxes, raw.scores, raw.labels, raw.masks


def build(spec: ModelSpec, fixed_count: bool = False) -> ToyDetector:
    assert isinstance(spec.heads, ToyOptions)
    return ToyDetector(spec.heads).eval()


def calibrate_(model: ToyDetector, images: torch.Tensor, shapes: list[tuple[int, int]]) -> None:
    """Spread the class logits so scores differ (random weights alone give near-equal ones)."""
    with torch.no_grad():
        model.head.bias[4:] = torch.linspace(-2, 2, model.head.bias.shape[0] - 4, dtype=model.head.bias.dtype)


def stage_rule(nodes, graph_outputs: set[str]) -> list[str]:
    """Backbone and neck scopes -> backbone+fpn, everything after -> toy_head."""
    stages, current = [], "backbone+fpn"
    for node in nodes:
        parts = node.name.split("/")
        if "head" in parts:
            current = "toy_head"
        stages.append(current)
    return stages


def feature_rule(onnx_path) -> list[str]:
    """The neck's one output: the ReLU in the neck's scope."""
    import onnx

    nodes = onnx.load(str(onnx_path), load_external_data=False).graph.node
    return [next(n.output[0] for n in nodes if "/neck/" in n.name and n.op_type == "Relu")]


FAMILY_MODEL = FamilyModel(build, calibrate_)

TOY = register_family(FamilyEntry(
    name="toy", display_name="Toy", architecture="{backbone}, a toy detector (tests only)",
    options_type=ToyOptions, masks_output="mask_probs", masks_doc="(D,28,28) box-relative probabilities",
    stage_names=("backbone+fpn", "toy_head"), feature_levels=("T1",),
    model="toy_family:FAMILY_MODEL", graph="toy_family:ToyGraph",
    decode="maskbench.pipeline.postprocess:paste_box_masks",  # Mask R-CNN's decoding, reused by path
    stage_rule="toy_family:stage_rule", feature_rule="toy_family:feature_rule",
))

TOY_S = register_model(ModelSpec(
    name="toy-s_coco", alias="toy-s", backbone="ToyNet", build_backbone=lambda: nn.Identity(),
    weights=WeightsMeta("http://127.0.0.1:9/toy-s_coco-00000000.pth", "00000000", 1.0, 1.0, "1x", "none",
                        licence="test fixture"),
    num_params=8 * 3 * 9 + 8 + 8 * 8 * 9 + 8 + 8 * 84 + 84 + 28 * 28, config_path="toy.py",
    family=TOY, heads=ToyOptions(), input_format=InputFormat(stretch_size=(128, 96), keep_ratio_scale=(128, 96)),
))
