"""The names the command line offers: models, runtimes, precisions, resize modes, COCOeval
backends, report metrics.

This module imports nothing but the standard library (no torch, no numpy), so that building the
``maskbench`` parser, and ``maskbench --help``, stays fast; the library modules that use these
names import them from here (``runtimes.base.PRECISIONS``, ``preprocess.ResizeMode``,
``evaluation.coco_eval.BACKENDS``, ``report.pareto.METRICS``, ``report.side_by_side.DEFAULT_PAIR``
are these very objects).

Model names come from the zoo and runtime names from the runtime registry (both import no torch;
see ``cli/args.py``).
"""

from __future__ import annotations

from enum import Enum

ALL_MODELS = "all"  # benchmark --models all: every zoo model (the zoo's MODEL_SETS)

# What `maskbench export --runtime` prepares: the ONNX file alone, or it plus a graph runtime's files.
EXPORT_TARGETS: tuple[str, ...] = ("onnx", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt")

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")


class ResizeMode(str, Enum):
    KEEP_RATIO = "keep_ratio"
    STRETCH = "stretch"


KEEP_RATIO_SCALE = (1333, 800)  # Mask R-CNN's keep-ratio limits: long edge, short edge (zoo.InputFormat)
STUDY_INPUT_SIZE = (1344, 800)  # the study's stretch size, width x height: Mask R-CNN's default
RTMDET_INPUT_SIZE = (640, 640)  # RTMDet-Ins' stretch size and keep-ratio limits

# COCOeval implementations (evaluation.coco_eval).
FASTER = "faster-coco-eval"
PYCOCOTOOLS = "pycocotools"
BACKENDS: tuple[str, ...] = (FASTER, PYCOCOTOOLS)

# What a report's plot and `recommend` rank by (report.pareto).
METRICS: dict[str, str] = {"mask_ap": "mask AP", "box_ap": "box AP"}
# The two models the report draws side by side (report.side_by_side), as in the study.
DEFAULT_PAIR: tuple[str, str] = ("convnext-t", "r101")
