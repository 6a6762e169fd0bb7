"""Calibration frames for int8 post-training quantization, preprocessed as the runtime's inputs.

Quantization measures the range of every quantized activation on these frames, so they must be
what the graph will see: the same resize, normalisation and zero padding as ``preprocess``
gives the runtime, at the exported graph's static input size. The default is the embedded
nuScenes frames (six cameras), the frames the rest of maskbench checks and times on.

The fingerprint (sha256 of the preprocessed tensors) is part of a quantized artifact's cache
key: other frames, or the same frames at another size or normalisation, give other ranges.

Random weights are calibrated on frames too (:mod:`maskbench.models.random_init`): the benchmark
and the conversion check calibrate them on the frames they measure, at most
:data:`MAX_CALIBRATION_FRAMES` of them (as one batch), and the benchmark quantizes int8 on the
same ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..data.frames import Frame, load_frames
from ..models.factory import RANDOM, LoadedModel, calibration_batch, create_model
from ..models.inputs import pad_like_pipeline, preprocess
from ..pipeline.graph_io import stack_feeds
from ..pipeline.preprocess import ResizeMode
from ..utils.errors import MaskbenchError
from ..zoo import InputFormat, ModelSpec, get_spec
from .onnx_export import ExportTarget

MAX_CALIBRATION_FRAMES = 8


def calibration_frames(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The first :data:`MAX_CALIBRATION_FRAMES` of ``images``: what calibration measures on."""
    return list(images[:MAX_CALIBRATION_FRAMES])


def random_weights_calibration(spec: ModelSpec, images: Sequence[np.ndarray], input_size: tuple[int, int] | None,
                               keep_ratio: bool = False) -> dict:
    """``create_model``'s keyword arguments that calibrate random weights on ``images`` (at most
    :data:`MAX_CALIBRATION_FRAMES`, each resized to ``input_size`` (w, h) as ``calibration_batch`` does)."""
    batch, shapes = calibration_batch(spec, calibration_frames(images), input_size, keep_ratio=keep_ratio)
    return {"calibration_images": batch, "calibration_shapes": shapes}


def calibrated_random_model(model: str, frames: Sequence[Frame | np.ndarray], mode: ResizeMode,
                            input_size: tuple[int, int] | None, seed: int = 0) -> LoadedModel:
    """Random weights calibrated on ``frames`` (decoded frames or RGB arrays; at most
    :data:`MAX_CALIBRATION_FRAMES`), each resized to the padded input size the first one gets in
    ``mode`` (so one batch)."""
    spec = get_spec(model)
    images = [frame if isinstance(frame, np.ndarray) else frame.image for frame in frames]
    _, meta = preprocess(images[0], mode, input_size, spec.input_format)
    height, width = meta.pad_shape
    calibration = random_weights_calibration(spec, images, (width, height),
                                             keep_ratio=ResizeMode(mode) is ResizeMode.KEEP_RATIO)
    return create_model(model, RANDOM, seed=seed, **calibration)


def default_calibration_images() -> list[np.ndarray]:
    """The embedded nuScenes frames (RGB uint8), one per camera."""
    return [frame.image for frame in load_frames()]


def calibration_feeds(images: Sequence[np.ndarray] | None, target: ExportTarget,
                      input_format: InputFormat) -> list[dict[str, np.ndarray]]:
    """One ONNX feed per frame (``images``, plus ``img_shape`` for a keep-ratio graph).

    ``images``: RGB uint8 HxWx3 frames (``None``: :func:`default_calibration_images`). Stretch:
    each frame resized to the baked-in ``img_shape``; keep-ratio: resized keeping its aspect
    ratio to fit the graph's static input, then padded to it, its resized shape fed beside it.
    """
    images = default_calibration_images() if images is None else list(images)
    if not images:
        raise MaskbenchError("int8 quantization needs at least one calibration frame")
    height, width = target.input_hw
    feeds = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise MaskbenchError(f"calibration frames must be RGB uint8 HxWx3 arrays, not {image.dtype} "
                                 f"{tuple(image.shape)}")
        resized_hw = target.img_shape if target.img_shape is not None else _fit(image.shape[:2], target.input_hw)
        tensor, meta = preprocess(image, ResizeMode.STRETCH, (resized_hw[1], resized_hw[0]), input_format)
        tensor = pad_like_pipeline(tensor, (height, width), input_format)
        feed = {"images": np.ascontiguousarray(tensor.numpy(), dtype=np.float32)}
        if target.img_shape is None:
            feed["img_shape"] = np.asarray(meta.img_shape, dtype=np.int64)
        feeds.append(feed)
    return feeds if target.batch == 1 else batched_feeds(feeds, target.batch)


def batched_feeds(feeds: Sequence[dict[str, np.ndarray]], batch: int) -> list[dict[str, np.ndarray]]:
    """Single-image feeds as static batches of ``batch`` for a batch graph: each frame fills every
    slot of its batch. A batch graph selects per image in nodes of each slot's own
    (:mod:`maskbench.export.graph_batch`), which quantization scales one by one: fed the same
    frames, every slot gets the same scales, so an image's answer does not depend on its slot."""
    return [stack_feeds([feed] * batch) for feed in feeds]


def _fit(image_hw: tuple[int, int], box_hw: tuple[int, int]) -> tuple[int, int]:
    scale = min(box_hw[0] / image_hw[0], box_hw[1] / image_hw[1])
    return min(box_hw[0], int(image_hw[0] * scale + 0.5)), min(box_hw[1], int(image_hw[1] * scale + 0.5))


def feeds_fingerprint(feeds: Sequence[dict[str, np.ndarray]]) -> str:
    """sha256 of the feeds (names, shapes, values): the calibration set's identity."""
    digest = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
