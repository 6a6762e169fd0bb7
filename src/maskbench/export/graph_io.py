"""What an exported graph takes and gives, without torch: its input/output names, the
:class:`ExportTarget` it is specialised for, and its feeds from a preprocessed array.

Split from :mod:`.onnx_export` (which re-exports these names) so that the torch-free
deployment (:mod:`maskbench.deploy`) feeds a graph exactly as the runtimes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..names import ResizeMode
from ..zoo import Family, ModelSpec

INPUT_NAMES_STRETCH = ["images"]
INPUT_NAMES_KEEP_RATIO = ["images", "img_shape"]
OUTPUT_NAMES = ["boxes", "scores", "labels", "mask_probs"]  # Mask R-CNN's
RTMDET_OUTPUT_NAMES = ["boxes", "scores", "labels", "mask_logits"]


@dataclass(frozen=True)
class ExportTarget:
    """What an exported graph is specialised for.

    ``input_hw``: the (padded) input tensor's (H, W); ``img_shape``: the resized (h, w) baked in
    (stretch) or ``None`` when it is a graph input (keep-ratio).
    """

    input_hw: tuple[int, int]
    img_shape: tuple[int, int] | None

    @property
    def mode(self) -> ResizeMode:
        return ResizeMode.STRETCH if self.img_shape is not None else ResizeMode.KEEP_RATIO

    @property
    def input_names(self) -> list[str]:
        return INPUT_NAMES_STRETCH if self.img_shape is not None else INPUT_NAMES_KEEP_RATIO

    @classmethod
    def for_input(cls, images: Any, img_shape: tuple[int, int], mode: ResizeMode) -> ExportTarget:
        """``images``: the (1, 3, H, W) input, a tensor or an array (only its shape is read)."""
        input_hw = (int(images.shape[-2]), int(images.shape[-1]))
        if ResizeMode(mode) == ResizeMode.STRETCH:
            return cls(input_hw, (int(img_shape[0]), int(img_shape[1])))
        return cls(input_hw, None)


def output_names(spec: ModelSpec) -> list[str]:
    """The exported graph's outputs, in order: boxes, scores, labels, then the family's masks."""
    return family_output_names(spec.family)


def family_output_names(family: Family) -> list[str]:
    return RTMDET_OUTPUT_NAMES if family is Family.RTMDET_INS else OUTPUT_NAMES


def array_feeds(images: np.ndarray, img_shape: tuple[int, int], target: ExportTarget) -> dict[str, np.ndarray]:
    """The exported graph's inputs: ``images`` float32, plus ``img_shape`` int64 ``[h, w]`` for a
    keep-ratio graph (a stretch graph has it baked in)."""
    feeds = {"images": np.ascontiguousarray(images, dtype=np.float32)}
    if target.img_shape is None:
        feeds["img_shape"] = np.asarray([int(img_shape[0]), int(img_shape[1])], dtype=np.int64)
    return feeds
