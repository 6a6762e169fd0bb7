"""The model table: one row per model, every published fact once.

The README table is generated from it (``maskbench zoo --markdown``) and a test checks the
parameter counts against the built models, so the documentation cannot drift from the code.
Published AP are MMDetection's COCO val2017 numbers from its metafiles (mmdet 3.3.0), and for
RF-DETR-Seg rfdetr's README (1.11.2; :mod:`.rfdetr_sizes`). A row's
family entry (:mod:`.families`) says how its network is built, exported and decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from ..utils.errors import UnknownModelError
from .families import MASK_RCNN, RFDETR_SEG, RTMDET_INS, families, get_family
from .rfdetr_sizes import SIZES, RFDETRSegSize
from .specs import RESNEST_INPUT, RTMDET_INPUT, HeadOptions, ModelSpec, RTMDetOptions, WeightsMeta, rfdetr_input

if TYPE_CHECKING:  # the zoo is plain data: listing it imports neither torch nor model code
    from torch import nn

MMDET_DOWNLOAD = "https://download.openmmlab.com/mmdetection/v2.0"
MMDET3_DOWNLOAD = "https://download.openmmlab.com/mmdetection/v3.0"


@cache
def _backbone(module: str, builder: str, *args: float) -> Callable[[], nn.Module]:
    """A builder imported on first use, so listing the zoo does not import every backbone.
    Cached: models sharing an architecture share the very same builder object."""

    def build() -> nn.Module:
        return getattr(import_module(f"maskbench.models.backbones.{module}"), builder)(*args)

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
_RTMDET = "300 epochs, mosaic + mixup + large-scale jitter, AdamW, EMA"


def _rtmdet_ins(size: str, batch: str, stamp: str, box_ap: float, mask_ap: float, num_params: int,
                options: RTMDetOptions) -> ModelSpec:
    """One RTMDet-Ins row: name, URL and config follow MMDetection's pattern for every size."""
    name = f"rtmdet-ins_{size}_{batch}-300e_coco"
    return ModelSpec(
        name=name, alias=f"rtmdet-ins-{size[0] if size == 'tiny' else size}", backbone=f"CSPNeXt-{size}",
        build_backbone=_backbone("cspnext", "build_cspnext", options.deepen_factor, options.widen_factor),
        weights=WeightsMeta(f"{MMDET3_DOWNLOAD}/rtmdet/{name}/{name}_{stamp}.pth", stamp[-8:], box_ap, mask_ap,
                            "300e", _RTMDET),
        num_params=num_params, config_path=f"rtmdet/{name}.py", heads=options,
        input_format=RTMDET_INPUT, family=RTMDET_INS)


@cache
def _rfdetr_backbone(alias: str) -> Callable[[], nn.Module]:
    """RF-DETR-Seg's DINOv2 + projector of one size, imported on first use."""

    def build() -> nn.Module:
        module = import_module("maskbench.models.rfdetr.backbone")
        return module.Backbone(next(size for size in SIZES if size.alias == alias))

    build.__qualname__ = f"rfdetr_backbone_{alias}"
    return build


def _rfdetr_seg(size: RFDETRSegSize) -> ModelSpec:
    """One RF-DETR-Seg row, from rfdetr's own numbers (:mod:`.rfdetr_sizes`): its model names,
    checkpoint URLs and MD5s, README AP; the row's options are the size itself."""
    return ModelSpec(
        name=size.name, alias=size.alias,
        backbone=f"DINOv2-S/{size.patch_size}" + (f" {size.num_windows}x{size.num_windows} windows"
                                                  if size.num_windows > 1 else ""),
        build_backbone=_rfdetr_backbone(size.alias),
        weights=WeightsMeta(size.checkpoint_url, None, size.published_box_ap, size.published_mask_ap, "O365+ft",
                            size.recipe, licence=f"{size.licence} (rfdetr)", md5=size.checkpoint_md5,
                            published_by="Roboflow (rfdetr README)"),
        num_params=size.parameters,
        config_path=f"https://pypi.org/project/rfdetr/1.11.2/ (rfdetr/config.py: {size.rfdetr_class}Config)",
        heads=size, input_format=rfdetr_input(size.resolution), family=RFDETR_SEG)


MODELS: list[ModelSpec] = [
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_r50_fpn_1x_coco", alias="r50", backbone="ResNet-50", build_backbone=_resnet50,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth",
            "d4b0c5d6", 38.2, 34.7, "1x", _ONE_X),
        num_params=44_396_336, config_path="mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py"),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_r101_fpn_1x_coco", alias="r101", backbone="ResNet-101", build_backbone=_resnet101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r101_fpn_1x_coco/mask_rcnn_r101_fpn_1x_coco_20200204-1efe0ed5.pth",
            "1efe0ed5", 40.0, 36.1, "1x", _ONE_X),
        num_params=63_388_464, config_path="mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_r101_fpn_ms-poly-3x_coco", alias="r101-3x", backbone="ResNet-101",
        build_backbone=_resnet101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_r101_fpn_mstrain-poly_3x_coco/"
            "mask_rcnn_r101_fpn_mstrain-poly_3x_coco_20210524_200244-5675c317.pth",
            "5675c317", 42.7, 38.5, "3x", _THREE_X),
        num_params=63_388_464, config_path="mask_rcnn/mask-rcnn_r101_fpn_ms-poly-3x_coco.py"),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_x101-32x4d_fpn_1x_coco", alias="x101", backbone="ResNeXt-101 32x4d",
        build_backbone=_resnext101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_x101_32x4d_fpn_1x_coco/"
            "mask_rcnn_x101_32x4d_fpn_1x_coco_20200205-478d0b67.pth",
            "478d0b67", 41.9, 37.5, "1x", _ONE_X),
        num_params=63_017_008, config_path="mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco", alias="x101-3x", backbone="ResNeXt-101 32x4d",
        build_backbone=_resnext101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/mask_rcnn/mask_rcnn_x101_32x4d_fpn_mstrain-poly_3x_coco/"
            "mask_rcnn_x101_32x4d_fpn_mstrain-poly_3x_coco_20210524_201410-abcd7859.pth",
            "abcd7859", 43.6, 39.0, "3x", _THREE_X),
        num_params=63_017_008, config_path="mask_rcnn/mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco.py"),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco", alias="s101", backbone="ResNeSt-101",
        build_backbone=_resnest101,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/resnest/mask_rcnn_s101_fpn_syncbn-backbone%2Bhead_mstrain_1x_coco/"
            "mask_rcnn_s101_fpn_syncbn-backbone%2Bhead_mstrain_1x_coco_20201005_215831-af60cdf9.pth",
            "af60cdf9", 45.2, 40.2, "1x", "multi-scale training, SyncBN in backbone and heads, 4conv1fc box head"),
        num_params=68_427_088, config_path="resnest/mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py",
        heads=HeadOptions(bbox_head_convs=4, bbox_head_fcs=1, head_norm=True),
        input_format=RESNEST_INPUT, in_study=True),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_swin-t-p4-w7_fpn_1x_coco", alias="swin-t", backbone="Swin-T", build_backbone=_swin_tiny,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco/"
            "mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth",
            "9d6b7cfa", 42.7, 39.3, "1x", "single-scale training, AdamW"),
        num_params=47_794_602, config_path="swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py", in_study=True),
    ModelSpec(
        family=MASK_RCNN,
        name="mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco", alias="convnext-t", backbone="ConvNeXt-T",
        build_backbone=_convnext_tiny,
        weights=WeightsMeta(
            f"{MMDET_DOWNLOAD}/convnext/mask_rcnn_convnext-t_p4_w7_fpn_fp16_ms-crop_3x_coco/"
            "mask_rcnn_convnext-t_p4_w7_fpn_fp16_ms-crop_3x_coco_20220426_154953-050731f4.pth",
            "050731f4", 46.2, 41.7, "3x", "multi-scale + crop training, AdamW, mixed precision"),
        num_params=48_095_376, config_path="convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py",
        in_study=True),
    # Parameter counts: MMDetection 3.3's built models (``MODELS.build(cfg.model)``, measured).
    _rtmdet_ins("tiny", "8xb32", "20221130_151727-ec670f7e", 40.5, 35.4, 5_638_187,
                RTMDetOptions(0.167, 0.375, 96, 1)),
    _rtmdet_ins("s", "8xb32", "20221121_212604-fdc5d7ec", 44.0, 38.7, 10_183_311,
                RTMDetOptions(0.33, 0.5, 128, 1)),
    _rtmdet_ins("m", "8xb32", "20221123_001039-6eba602e", 48.8, 42.1, 27_575_111,
                RTMDetOptions(0.67, 0.75, 192, 2)),
    _rtmdet_ins("l", "8xb32", "20221124_103237-78d1d652", 51.2, 43.7, 57_365_663,
                RTMDetOptions(1.0, 1.0, 256, 3)),
    _rtmdet_ins("x", "8xb16", "20221124_111313-33d4595b", 52.4, 44.6, 102_703_767,
                RTMDetOptions(1.33, 1.25, 320, 4)),
    *(_rfdetr_seg(size) for size in SIZES),
]

STUDY_MODELS: tuple[str, ...] = tuple(m.name for m in MODELS if m.in_study)
# Named sets `--models` takes beside zoo names: the study's five, each family, every model
# (kept up to date by :func:`register_model`).
MODEL_SETS: dict[str, tuple[str, ...]] = {}


def _update_sets() -> None:
    sets = {"study": STUDY_MODELS,
            **{family.name: tuple(m.name for m in MODELS if m.family is family) for family in families()},
            "all": tuple(m.name for m in MODELS)}
    MODEL_SETS.clear()
    MODEL_SETS.update(sets)


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a row (a family from outside maskbench registers its models so); names must be new."""
    if any(name in (m.name, m.alias) for m in MODELS for name in (spec.name, spec.alias)):
        raise ValueError(f"a model named {spec.name!r} or {spec.alias!r} is in the zoo already")
    get_family(spec.family.name)  # registered first
    MODELS.append(spec)
    _update_sets()
    return spec


_update_sets()


def get_spec(name: str) -> ModelSpec:
    """Look a model up by its MMDetection config name or its short alias."""
    for spec in MODELS:
        if name in (spec.name, spec.alias):
            return spec
    known = ", ".join(m.alias for m in MODELS)
    raise UnknownModelError(f"unknown model '{name}'; run `maskbench zoo` to list them (aliases: {known})")

