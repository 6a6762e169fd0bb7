"""The model zoo: one typed table naming each Mask R-CNN, its backbone and its official weights.

Like torchvision's weight enums, every fact a table or report shows (published AP, schedule,
URL, hash, parameter count) lives here once; the README table is generated from it
(``maskbench zoo --markdown``) and a test checks the parameter counts against the built models,
so the documentation cannot drift from the code.

Published AP are MMDetection's COCO val2017 numbers from its metafiles (mmdet 3.3.0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from .errors import UnknownModelError

if TYPE_CHECKING:  # the zoo is plain data: listing it imports neither torch nor model code
    from torch import nn

MMDET_DOWNLOAD = "https://download.openmmlab.com/mmdetection/v2.0"
MMDET_CONFIGS = "https://github.com/open-mmlab/mmdetection/blob/v3.3.0/configs"

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
RESNEST_MEAN = (123.68, 116.779, 103.939)  # ResNeSt's configs use these slightly different values
RESNEST_STD = (58.393, 57.12, 57.375)


@dataclass(frozen=True)
class HeadOptions:
    """What differs between zoo models after the backbone."""

    bbox_head_convs: int = 0  # 4 for ResNeSt's Shared4Conv1FCBBoxHead
    bbox_head_fcs: int = 2  # 1 for Shared4Conv1FCBBoxHead
    head_norm: bool = False  # BatchNorm in the RoI heads' convs (ResNeSt)
    num_classes: int = 80


@dataclass(frozen=True)
class WeightsMeta:
    """An official COCO checkpoint and what MMDetection published for it."""

    url: str
    sha256_prefix: str  # the 8 hex digits in the file name, as torch.hub checks them
    box_ap: float
    mask_ap: float
    schedule: str  # short: 1x / 3x
    recipe: str  # what else differs in training
    licence: str = "Apache-2.0 (MMDetection model zoo)"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # MMDetection 3.x config name
    alias: str  # short name for the command line
    backbone: str
    build_backbone: Callable[[], nn.Module]
    weights: WeightsMeta
    num_params: int  # whole detector; checked against the built model by a test
    config_path: str
    heads: HeadOptions = HeadOptions()
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    in_study: bool = False  # one of the five models of the published study

    @property
    def config_url(self) -> str:
        return f"{MMDET_CONFIGS}/{self.config_path}"


@cache
def _backbone(module: str, builder: str) -> Callable[[], nn.Module]:
    """A builder imported on first use, so listing the zoo does not import every backbone.
    Cached: models sharing an architecture share the very same builder object."""

    def build() -> nn.Module:
        return getattr(import_module(f"{__package__}.models.backbones.{module}"), builder)()

    build.__qualname__ = builder
    return build


_resnet50 = _backbone("resnet", "build_resnet50")
_resnet101 = _backbone("resnet", "build_resnet101")
_resnext101 = _backbone("resnet", "build_resnext101_32x4d")
_resnest101 = _backbone("resnet", "build_resnest101")
_swin_tiny = _backbone("swin", "build_swin_tiny")
_convnext_tiny = _backbone("convnext", "build_convnext_tiny")


_ONE_X = "single-scale training, SGD"
_THREE_X = "multi-scale training, polygon masks, SGD"

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="mask-rcnn_r50_fpn_1x_coco", alias="r50", backbone="ResNet-50", build_backbone=_resnet50,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth",
            "d4b0c5d6", 38.2, 34.7, "1x", _ONE_X),
        num_params=44_396_336, config_path="mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py"),
    ModelSpec(
        name="mask-rcnn_r101_fpn_1x_coco", alias="r101", backbone="ResNet-101", build_backbone=_resnet101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r101_fpn_1x_coco/mask_rcnn_r101_fpn_1x_coco_20200204-1efe0ed5.pth",
            "1efe0ed5", 40.0, 36.1, "1x", _ONE_X),
        num_params=63_388_464, config_path="mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        name="mask-rcnn_r101_fpn_ms-poly-3x_coco", alias="r101-3x", backbone="ResNet-101",
        build_backbone=_resnet101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r101_fpn_mstrain-poly_3x_coco/"
            "mask_rcnn_r101_fpn_mstrain-poly_3x_coco_20210524_200244-5675c317.pth",
            "5675c317", 42.7, 38.5, "3x", _THREE_X),
        num_params=63_388_464, config_path="mask_rcnn/mask-rcnn_r101_fpn_ms-poly-3x_coco.py"),
    ModelSpec(
        name="mask-rcnn_x101-32x4d_fpn_1x_coco", alias="x101", backbone="ResNeXt-101 32x4d",
        build_backbone=_resnext101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_x101_32x4d_fpn_1x_coco/"
            "mask_rcnn_x101_32x4d_fpn_1x_coco_20200205-478d0b67.pth",
            "478d0b67", 41.9, 37.5, "1x", _ONE_X),
        num_params=63_017_008, config_path="mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        name="mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco", alias="x101-3x", backbone="ResNeXt-101 32x4d",
        build_backbone=_resnext101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_x101_32x4d_fpn_mstrain-poly_3x_coco/"
            "mask_rcnn_x101_32x4d_fpn_mstrain-poly_3x_coco_20210524_201410-abcd7859.pth",
            "abcd7859", 43.6, 39.0, "3x", _THREE_X),
        num_params=63_017_008, config_path="mask_rcnn/mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco.py"),
    ModelSpec(
        name="mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco", alias="s101", backbone="ResNeSt-101",
        build_backbone=_resnest101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/resnest/mask_rcnn_s101_fpn_syncbn-backbone%2Bhead_mstrain_1x_coco/"
            "mask_rcnn_s101_fpn_syncbn-backbone%2Bhead_mstrain_1x_coco_20201005_215831-af60cdf9.pth",
            "af60cdf9", 45.2, 40.2, "1x", "multi-scale training, SyncBN in backbone and heads, 4conv1fc box head"),
        num_params=68_427_088, config_path="resnest/mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py",
        heads=HeadOptions(bbox_head_convs=4, bbox_head_fcs=1, head_norm=True),
        pixel_mean=RESNEST_MEAN, pixel_std=RESNEST_STD, in_study=True),
    ModelSpec(
        name="mask-rcnn_swin-t-p4-w7_fpn_1x_coco", alias="swin-t", backbone="Swin-T", build_backbone=_swin_tiny,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco/"
            "mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth",
            "9d6b7cfa", 42.7, 39.3, "1x", "single-scale training, AdamW"),
        num_params=47_794_602, config_path="swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        name="mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco", alias="convnext-t", backbone="ConvNeXt-T",
        build_backbone=_convnext_tiny,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/convnext/mask_rcnn_convnext-t_p4_w7_fpn_fp16_ms-crop_3x_coco/"
            "mask_rcnn_convnext-t_p4_w7_fpn_fp16_ms-crop_3x_coco_20220426_154953-050731f4.pth",
            "050731f4", 46.2, 41.7, "3x", "multi-scale + crop training, AdamW, mixed precision"),
        num_params=48_095_376, config_path="convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py",
        in_study=True),
)

STUDY_MODELS: tuple[str, ...] = tuple(m.name for m in MODELS if m.in_study)


def get_spec(name: str) -> ModelSpec:
    """Look a model up by its MMDetection config name or its short alias."""
    for spec in MODELS:
        if name in (spec.name, spec.alias):
            return spec
    known = ", ".join(m.alias for m in MODELS)
    raise UnknownModelError(f"unknown model '{name}'; run `maskbench zoo` to list them (aliases: {known})")

