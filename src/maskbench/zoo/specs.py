"""The zoo's types: what a model row and a family entry hold. Plain data: no torch, no model code.

Like torchvision's weight enums, every fact a table or report shows (published AP, schedule,
URL, hash, parameter count) lives in one row (:mod:`.table`); what is common to a family (its
architecture, graph outputs, stages, feature levels, and where its code lives) lives in one
:class:`FamilyEntry` (:mod:`.families`). What differs between models before the network
(channel order, normalisation, input size, padding) is each row's :class:`InputFormat`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

MMDET_CONFIGS = "https://github.com/open-mmlab/mmdetection/blob/v3.3.0/configs"

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
RESNEST_MEAN = (123.68, 116.779, 103.939)  # ResNeSt's configs use these slightly different values
RESNEST_STD = (58.393, 57.12, 57.375)


@dataclass(frozen=True)
class InputFormat:
    """How a model's MMDetection test pipeline turns an RGB image into its input tensor.

    ``mean``/``std`` are in the network's channel order (BGR when ``bgr``). Mask R-CNN pads to a
    multiple of 32 with zeros after normalisation; RTMDet-Ins pads the keep-ratio image to its
    square scale with raw pixel value 114 before normalisation (``Pad(size=(640, 640))``).
    MMDetection's models resize the uint8 image with OpenCV; RF-DETR-Seg divides by 255 first and
    resizes the float image with PyTorch, unpadded (``pixel_divisor``, ``pad_divisor``).
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    bgr: bool = False  # the network takes BGR (RTMDet's ``bgr_to_rgb=False`` on cv2-loaded images)
    stretch_size: tuple[int, int] = (1344, 800)  # default stretch input, width x height (the study's)
    keep_ratio_scale: tuple[int, int] = (1333, 800)  # default keep-ratio limits: long edge, short edge
    pad_to_scale: bool = False  # keep-ratio images padded up to ``keep_ratio_scale`` (w x h = long x short)
    pad_value: float | None = None  # raw pixel value of the padding; None: zeros after normalisation
    pad_divisor: int = 32  # the padded input's sides are multiples of it (1: no padding)
    keep_ratio: bool = True  # the model has a keep-ratio mode (RF-DETR-Seg: its square stretch only)
    pixel_divisor: float | None = None  # pixels divided by it, in float, *before* the resize (RF-DETR-Seg's
    # x / 255, resized as PyTorch resizes a float image: no rounding to uint8); mean/std then in those units


MASK_RCNN_INPUT = InputFormat()
RESNEST_INPUT = InputFormat(RESNEST_MEAN, RESNEST_STD)
RFDETR_MEAN = (0.485, 0.456, 0.406)  # ImageNet's, in [0, 1] units: rfdetr normalises x / 255
RFDETR_STD = (0.229, 0.224, 0.225)


def rfdetr_input(resolution: int) -> InputFormat:
    """RF-DETR-Seg's: RGB / 255, stretched to its square resolution as PyTorch resizes, unpadded."""
    square = (resolution, resolution)
    return InputFormat(RFDETR_MEAN, RFDETR_STD, stretch_size=square, keep_ratio_scale=square, pad_divisor=1,
                       keep_ratio=False, pixel_divisor=255.0)


RTMDET_INPUT = InputFormat((103.53, 116.28, 123.675), (57.375, 57.12, 58.395), bgr=True, stretch_size=(640, 640),
                           keep_ratio_scale=(640, 640), pad_to_scale=True, pad_value=114.0)


@dataclass(frozen=True)
class RTMDetOptions:
    """An RTMDet-Ins size, as its config states it: CSPNeXt's depth and width multipliers, the
    neck's output (= head) channels and its CSP blocks per layer."""

    deepen_factor: float
    widen_factor: float
    channels: int
    num_csp_blocks: int
    num_classes: int = 80


@dataclass(frozen=True)
class HeadOptions:
    """What differs between zoo models after the backbone."""

    bbox_head_convs: int = 0  # 4 for ResNeSt's Shared4Conv1FCBBoxHead
    bbox_head_fcs: int = 2  # 1 for Shared4Conv1FCBBoxHead
    head_norm: bool = False  # BatchNorm in the RoI heads' convs (ResNeSt)
    num_classes: int = 80


@dataclass(frozen=True)
class WeightsMeta:
    """An official COCO checkpoint and what its publisher published for it."""

    url: str
    sha256_prefix: str | None  # the 8 hex digits in the file name, as torch.hub checks them (None: ``md5``)
    box_ap: float | None  # None: not published (RF-DETR-Seg's README gives mask AP only)
    mask_ap: float
    schedule: str  # short: 1x / 3x / 300e
    recipe: str  # what else differs in training
    licence: str = "Apache-2.0 (MMDetection model zoo)"
    md5: str | None = None  # the whole MD5, where the publisher lists that instead (rfdetr)
    published_by: str = "MMDetection"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # MMDetection 3.x config name
    alias: str  # short name for the command line
    backbone: str
    build_backbone: Callable[[], nn.Module]
    weights: WeightsMeta
    num_params: int  # whole detector; checked against the built model by a test
    config_path: str
    family: FamilyEntry  # its family's registry entry (:mod:`.families`)
    heads: object = HeadOptions()  # of the family's ``options_type``, checked here
    input_format: InputFormat = MASK_RCNN_INPUT
    in_study: bool = False  # one of the five models of the published study

    def __post_init__(self) -> None:
        if not isinstance(self.heads, self.family.options_type):
            raise TypeError(f"{self.name}: a {self.family.display_name} model takes "
                            f"{self.family.options_type.__name__}, not {type(self.heads).__name__}")

    @property
    def config_url(self) -> str:
        """MMDetection's config on GitHub; a row of another publisher gives its own URL."""
        return self.config_path if "://" in self.config_path else f"{MMDET_CONFIGS}/{self.config_path}"


@dataclass(frozen=True)
class FamilyEntry:
    """One model family, everything the stages after the zoo need to know about it.

    Plain data; its code is named by ``"module:attribute"`` paths, imported on first use
    (:func:`.families.locate`), each in the stage that owns it, so listing the zoo imports no
    model code and the torch-free deployment never imports the family's torch side:

    - ``model``: a :class:`maskbench.models.detector.FamilyModel` (build, random-weight calibration);
    - ``graph``: the branch-free export graph's ``nn.Module`` class, ``graph(model, img_shape)``;
    - ``decode``: torch-free ``(boxes, scores, labels, masks, meta, threshold) -> Detections``;
    - ``stage_rule``: torch-free ``(onnx nodes, graph output names) -> stage per node``;
    - ``feature_rule``: torch-free ``(onnx path, onnx nodes) -> feature tensor names`` (check-conversion taps).

    ``static_batch``: its graph also takes a static batch of B images (the rig's ``batch``
    configuration; :mod:`maskbench.export.graph_batch`); a family without it exports one image only.
    """

    name: str  # "mask-rcnn": the --models set, records, bundle manifests
    display_name: str  # "Mask R-CNN"
    architecture: str  # "{backbone} + FPN, ..." (zoo views)
    options_type: type  # the type of ModelSpec.heads
    masks_output: str  # the graph's fourth output: "mask_probs"
    masks_doc: str  # what it holds, for the ONNX metadata: "(D,28,28) box-relative probabilities"
    stage_names: tuple[str, ...]  # the network's stages in order (per-stage timing)
    feature_levels: tuple[str, ...]  # the neck's outputs (check-conversion, fidelity)
    model: str
    graph: str
    decode: str
    stage_rule: str
    feature_rule: str
    static_batch: bool = False

    @property
    def output_names(self) -> tuple[str, ...]:
        """The exported graph's outputs, in order."""
        return ("boxes", "scores", "labels", self.masks_output)

    def __str__(self) -> str:
        return self.name
