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

from argparse import ArgumentTypeError
from enum import Enum

ALL_MODELS = "all"  # benchmark --models all: every zoo model (the zoo's MODEL_SETS)

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


def milliseconds(text: str) -> float:
    """``"150"``, ``"150ms"``, ``"0.15s"`` -> 150.0 (a bare number is milliseconds)."""
    stripped = str(text).strip().lower()
    scale = 1.0
    for unit, factor in (("ms", 1.0), ("s", 1000.0)):
        if stripped.endswith(unit):
            stripped, scale = stripped[: -len(unit)].strip(), factor
            break
    try:
        value = float(stripped) * scale
    except ValueError:
        raise ArgumentTypeError(f"'{text}' is not a time; write e.g. 150ms, 0.15s or 150") from None
    if not value > 0:
        raise ArgumentTypeError(f"'{text}': a time must be positive")
    return value
