"""What an exported graph takes and gives, without torch: its input/output names, the
:class:`ExportTarget` it is specialised for, and its feeds from a preprocessed array.

Split from :mod:`.onnx_export` (which re-exports these names) so that the torch-free
deployment (:mod:`maskbench.deploy`) feeds a graph exactly as the runtimes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..utils.errors import MaskbenchError
from ..utils.names import ResizeMode
from ..zoo import FamilyEntry, ModelSpec, get_family, get_spec

KEY_PROP = "maskbench.export_key"  # metadata: everything the file depends on (JSON)
FAMILY_PROP = "maskbench.family"  # metadata: the model family's name (per-stage profiling, feature taps)
INPUT_NAMES_STRETCH = ["images"]
INPUT_NAMES_KEEP_RATIO = ["images", "img_shape"]


@dataclass(frozen=True)
class ExportTarget:
    """What an exported graph is specialised for.

    ``input_hw``: the (padded) input tensor's (H, W); ``img_shape``: the resized (h, w) baked in
    (stretch) or ``None`` when it is a graph input (keep-ratio); ``batch``: the static number of
    images the graph takes at once (the rig's cameras' simultaneous frames; 1 everywhere else).
    """

    input_hw: tuple[int, int]
    img_shape: tuple[int, int] | None
    batch: int = 1

    @property
    def mode(self) -> ResizeMode:
        return ResizeMode.STRETCH if self.img_shape is not None else ResizeMode.KEEP_RATIO

    @property
    def input_names(self) -> list[str]:
        return INPUT_NAMES_STRETCH if self.img_shape is not None else INPUT_NAMES_KEEP_RATIO

    @classmethod
    def for_input(cls, images: Any, img_shape: tuple[int, int], mode: ResizeMode) -> ExportTarget:
        """``images``: the (B, 3, H, W) input, a tensor or an array (only its shape is read)."""
        input_hw = (int(images.shape[-2]), int(images.shape[-1]))
        batch = int(images.shape[0])
        if ResizeMode(mode) == ResizeMode.STRETCH:
            return cls(input_hw, (int(img_shape[0]), int(img_shape[1])), batch)
        return cls(input_hw, None, batch)


def output_names(spec: ModelSpec, batch: int = 1) -> list[str]:
    """The exported graph's outputs, in order: boxes, scores, labels, then the family's masks;
    a static batch of B images gives each image's four, suffixed ``_0`` ... ``_{B-1}`` (the
    detection count differs per image, so they are not stacked)."""
    names = list(spec.family.output_names)
    return names if batch == 1 else [f"{name}_{i}" for i in range(batch) for name in names]


def stack_feeds(feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Single-image feeds (:func:`array_feeds`) as one static batch: ``images`` concatenated,
    ``img_shape`` (keep-ratio) stacked to (B, 2)."""
    stacked = {"images": np.ascontiguousarray(np.concatenate([f["images"] for f in feeds]), dtype=np.float32)}
    if "img_shape" in feeds[0]:
        stacked["img_shape"] = np.stack([f["img_shape"] for f in feeds])
    return stacked


def array_feeds(images: np.ndarray, img_shape: tuple[int, int], target: ExportTarget) -> dict[str, np.ndarray]:
    """The exported graph's inputs: ``images`` float32, plus ``img_shape`` int64 ``[h, w]`` for a
    keep-ratio graph (a stretch graph has it baked in)."""
    feeds = {"images": np.ascontiguousarray(images, dtype=np.float32)}
    if target.img_shape is None:
        feeds["img_shape"] = np.asarray([int(img_shape[0]), int(img_shape[1])], dtype=np.int64)
    return feeds


def graph_family(onnx_path: Any) -> FamilyEntry:
    """The family of an exported (or quantized) ONNX file, from the metadata the export wrote:
    the family's name, or the model name in the export key."""
    import json

    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    if FAMILY_PROP in props:
        return get_family(props[FAMILY_PROP])
    if KEY_PROP in props:
        return get_spec(json.loads(props[KEY_PROP])["model"]).family
    raise MaskbenchError(f"{onnx_path}: no maskbench metadata (which model family is it?); export it with "
                         "maskbench export")
