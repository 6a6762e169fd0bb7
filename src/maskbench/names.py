"""The names the command line offers: models, runtimes, precisions, resize modes, COCOeval
backends, report metrics.

This module imports nothing but the standard library (no torch, no numpy), so that building the
``maskbench`` parser, and ``maskbench --help``, stays fast; the library modules that use these
names import them from here (``runtimes.base.PRECISIONS``, ``preprocess.ResizeMode``,
``evaluation.coco_eval.BACKENDS``, ``report.pareto.METRICS``, ``report.side_by_side.DEFAULT_PAIR``
are these very objects).

Two tables repeat a registry that imports torch: :data:`MODEL_ALIASES` (``zoo.MODELS``) and
:data:`RUNTIME_NAMES` (``runtimes.base.RUNTIMES``); ``tests/test_cli_args.py`` fails when they
drift apart.
"""

from __future__ import annotations

from enum import Enum

# Short alias -> MMDetection 3.x config name, in the zoo's order (= zoo.MODELS, checked by a test).
MODEL_ALIASES: dict[str, str] = {
    "r50": "mask-rcnn_r50_fpn_1x_coco",
    "r101": "mask-rcnn_r101_fpn_1x_coco",
    "r101-3x": "mask-rcnn_r101_fpn_ms-poly-3x_coco",
    "x101": "mask-rcnn_x101-32x4d_fpn_1x_coco",
    "x101-3x": "mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco",
    "s101": "mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco",
    "swin-t": "mask-rcnn_swin-t-p4-w7_fpn_1x_coco",
    "convnext-t": "mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco",
}
MODEL_NAMES: frozenset[str] = frozenset(MODEL_ALIASES) | frozenset(MODEL_ALIASES.values())  # what get_spec takes
ALL_MODELS = "all"  # benchmark --models all: every zoo model

# The runtime registry's names, in its order (= runtimes.base.RUNTIMES, checked by a test).
RUNTIME_NAMES: tuple[str, ...] = ("torch", "torch-compile", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt")
# What `maskbench export --runtime` prepares: the ONNX file alone, or it plus a graph runtime's files.
EXPORT_TARGETS: tuple[str, ...] = ("onnx", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt")

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")


class ResizeMode(str, Enum):
    KEEP_RATIO = "keep_ratio"
    STRETCH = "stretch"


KEEP_RATIO_SCALE = (1333, 800)  # keep-ratio limits: long edge, short edge
STUDY_INPUT_SIZE = (1344, 800)  # stretch size: width, height

# COCOeval implementations (evaluation.coco_eval).
FASTER = "faster-coco-eval"
PYCOCOTOOLS = "pycocotools"
BACKENDS: tuple[str, ...] = (FASTER, PYCOCOTOOLS)

# What a report's plot and `recommend` rank by (report.pareto).
METRICS: dict[str, str] = {"mask_ap": "mask AP", "box_ap": "box AP"}
# The two models the report draws side by side (report.side_by_side), as in the study.
DEFAULT_PAIR: tuple[str, str] = ("convnext-t", "r101")
