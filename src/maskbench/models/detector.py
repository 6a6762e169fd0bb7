"""What every family's network is to the rest of maskbench: one raw-output type, the
:class:`Detector` protocol, and the :class:`FamilyModel` a family entry names.

Runtimes, export, benchmark and verification work on a ``Detector`` and a ``RawDetections``,
never on a family's class: the family's registry entry (:mod:`maskbench.zoo.families`) says
how to build and calibrate it (``FamilyModel``), export it and decode its masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..pipeline.detections import Detections
from ..pipeline.postprocess import detections_from_outputs
from ..pipeline.preprocess import ImageMeta

if TYPE_CHECKING:
    from ..zoo import FamilyEntry, ModelSpec


@dataclass
class RawDetections:
    """One image's detections before post-processing (resized-image pixels).

    ``masks`` is what the family's network gives (its entry's ``masks_output``: Mask R-CNN's
    (D, 28, 28) box-relative probabilities, RTMDet-Ins' (D, H/8, W/8) logits); the family's
    ``decode`` turns them into original-image masks."""

    boxes: torch.Tensor  # (D, 4)
    scores: torch.Tensor  # (D,)
    labels: torch.Tensor  # (D,) int64, 0..79
    masks: torch.Tensor  # (D, ...) as the family's entry describes


class Detector(nn.Module):
    """What every family's network is (its class derives from this): the abilities every
    runtime and the benchmark use. ``forward(images, img_shapes) -> list[RawDetections]``;
    ``neck``: the module whose outputs are the feature levels (check-conversion hooks it)."""

    STAGE_NAMES: tuple[str, ...] = ()  # the family's stages, in order (= its entry's stage_names)
    detection_config: Any  # has ``mask_thr_binary``
    neck: nn.Module

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def staged_forward(self, images: torch.Tensor, img_shapes: Sequence[tuple[int, int]],
                       lap: Callable[[], None]) -> None:
        """``forward``'s work with ``lap()`` called after each of ``STAGE_NAMES`` (timing)."""
        raise NotImplementedError

    def dense_stages(self) -> list[tuple[object, str]]:
        """(owner, attribute) of each dense stage, in order: replacing ``getattr(owner, attribute)``
        changes what ``forward`` calls (reduced precision, compilation)."""
        raise NotImplementedError

    def dense_modules(self) -> list[nn.Module]:
        """The modules whose weights a half-precision copy converts."""
        raise NotImplementedError

    def export_settings(self) -> dict[str, dict]:
        """The detection settings an exported file depends on (its cache key)."""
        raise NotImplementedError

    def rows_after_nms(self) -> tuple[int, ...]:
        """The most rows each ``NonMaxSuppression`` of the exported graph keeps, in graph order:
        the sizes ONNX shape inference cannot know, for the FLOP count
        (:mod:`maskbench.export.flops`). A graph without NMS: ()."""
        return ()


@dataclass(frozen=True)
class FamilyModel:
    """A family's torch side, named by its registry entry's ``model`` path.

    ``build(spec, fixed_count)``: the architecture with PyTorch's default initialisation
    (``fixed_count``: exactly ``max_per_img`` detections, for benchmarks on random weights);
    ``calibrate_(model, images, shapes)``: random weights made to do a trained model's work;
    ``randomize_(model, seed)``: the random weights before calibration (None: He-normal per
    tensor name, :func:`maskbench.models.random_init.randomize_`); ``read_checkpoint(path)``: a
    checkpoint's state dict (None: MMDetection's layout, :func:`maskbench.weights.load_state_dict`)."""

    build: Callable[[ModelSpec, bool], Detector]
    calibrate_: Callable[[Any, torch.Tensor, list[tuple[int, int]]], None]
    randomize_: Callable[[Any, int], Any] | None = None
    read_checkpoint: Callable[[Path], dict[str, torch.Tensor]] | None = None
    random_recipe: str = "calibrated"  # what the weights description says of the random weights


def to_detections(raw: RawDetections, meta: ImageMeta, family: FamilyEntry, mask_threshold: float = 0.5) -> Detections:
    """:func:`~maskbench.pipeline.postprocess.detections_from_outputs` of the eager network's (or a
    runtime's) raw output, by the family's decoding."""
    boxes = raw.boxes.detach().cpu()
    boxes = boxes if boxes.dtype == torch.float64 else boxes.float()  # a double network's stay double
    return detections_from_outputs(family, boxes.numpy(), raw.scores.float().cpu().numpy(), raw.labels.cpu().numpy(),
                                   raw.masks.float().cpu().numpy(), meta, mask_threshold)
