"""Run a zoo model over images and write COCO-format results plus overlay PNGs.

A bad image (corrupt, truncated, not an image, too large) is reported for that file and the
others are still processed; whatever was predicted before an interruption (Ctrl-C, a full or
read-only disk) is still written to ``results.json`` (:mod:`.predict_files`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.images import load_image
from ..data.sources import ImageRef, find_images
from ..models.detector import to_detections
from ..models.factory import RANDOM, LoadedModel, create_model
from ..models.inputs import preprocess
from ..pipeline.coco_results import ImageRecord, detections_to_coco
from ..pipeline.detections import Detections
from ..pipeline.preprocess import ImageMeta, ResizeMode
from ..report.overlay import draw_overlay
from ..utils.errors import ImageError
from ..utils.run_info import run_info
from .files import FrameJournal, PredictionFiles

if TYPE_CHECKING:  # only for the annotation: runtimes load on use
    from ..runtimes.base import Runtime


@dataclass
class Predictor:
    """A loaded model plus the preprocessing it is run with."""

    loaded: LoadedModel
    mode: ResizeMode = ResizeMode.STRETCH
    input_size: tuple[int, int] | None = None
    runtime: Runtime | None = None  # None: the eager model

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, ImageMeta]:
        spec = self.loaded.spec
        return preprocess(image, self.mode, self.input_size, spec.input_format)

    def __call__(self, image: np.ndarray) -> Detections:
        tensor, meta = self.prepare(image)
        if self.runtime is not None:
            raw = self.runtime(tensor, meta.img_shape)
        else:
            raw = self.loaded.model(tensor, [meta.img_shape])[0]
        return to_detections(raw, meta, self.loaded.spec.family, self.loaded.model.detection_config.mask_thr_binary)


def load_predictor(model: str, weights: str = RANDOM, mode: ResizeMode = ResizeMode.STRETCH,
                   input_size: tuple[int, int] | None = None, calibration_image: np.ndarray | None = None,
                   seed: int = 0) -> Predictor:
    """A zoo model (alias or config name) with its weights (``"official"``, a ``.pth`` path, or
    ``"random"``) as a predictor of RGB uint8 images. Random weights are calibrated on
    ``calibration_image`` (the user's own frame) when given."""
    calibration: dict[str, Any] = {}
    if weights == RANDOM and calibration_image is not None:
        from ..zoo import get_spec

        spec = get_spec(model)
        tensor, meta = preprocess(calibration_image, mode, input_size, spec.input_format)
        calibration = {"calibration_images": tensor, "calibration_shapes": [meta.img_shape]}
    return Predictor(create_model(model, weights, seed=seed, **calibration), mode, input_size)


@dataclass
class PredictSummary:
    out_dir: Path
    weights: str
    processed: int = 0
    errors: list[str] = field(default_factory=list)
    kept: int = 0  # frames predicted by an earlier run of the same command (resumed, not predicted again)


def run_predict(
    model: str,
    weights: str,
    images: Path,
    out_dir: Path,
    cameras: Sequence[str] | None = None,
    mode: ResizeMode = ResizeMode.STRETCH,
    input_size: tuple[int, int] | None = None,
    overlays: bool = True,
    draw_threshold: float = 0.3,
    seed: int = 0,
    runtime: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    journal: FrameJournal | None = None,
) -> PredictSummary:
    """``runtime``: a name from ``maskbench.runtimes.RUNTIMES`` (None: the eager model on the CPU,
    or, with a ``precision`` other than fp32, the ``torch`` runtime); ``precision``: fp32, fp16
    or bf16 where the runtime supports it (``maskbench runtimes``). ``journal``: write each frame
    as it is done and skip the frames an earlier run of the same command did (``maskbench
    predict`` passes :class:`~maskbench.distributed.local_journal.ShardJournal`)."""
    if runtime is None and precision != "fp32":
        runtime = "torch"
    if runtime is not None:
        from ..runtimes.registry import get_runtime, require_runtime

        # A missing package or an unsupported precision is reported before the model is loaded.
        require_runtime(runtime, precision)
    refs = find_images(images, cameras)
    out_dir.mkdir(parents=True, exist_ok=True)
    first_image = _first_readable(refs)
    predictor = load_predictor(model, weights, mode, input_size, first_image, seed)
    if runtime is not None:
        predictor.runtime = get_runtime(runtime, predictor.loaded, mode=mode, threads=threads, precision=precision)
    summary = PredictSummary(out_dir, predictor.loaded.weights)
    done: set[int] = set()
    if journal is not None:
        run = {"model": predictor.loaded.spec.name, "weights": predictor.loaded.weights, "runtime": runtime,
               "precision": precision, "mode": ResizeMode(mode).value, "size": list(input_size) if input_size else None,
               "seed": seed}
        done = journal.start(run, [str(ref.path) for ref in refs])
        summary.kept = len(done)
    info = run_info(predictor.loaded.spec.name, predictor.loaded.weights, ResizeMode(mode), input_size,
                    predictor.runtime.describe() if predictor.runtime is not None else None)
    title = f"{predictor.loaded.spec.name} | weights: {predictor.loaded.weights}"
    # Detections are kept before the overlay is saved; the COCO files are written whatever stops the loop.
    todo = [(image_id, ref) for image_id, ref in enumerate(refs, 1) if image_id not in done]
    with PredictionFiles(out_dir, info, len(refs), overlays, journal, len(done)).kept_whatever_happens() as files:
        for image_id, ref in tqdm(todo, desc=f"predict {predictor.loaded.spec.alias}", unit="img"):
            started = time.perf_counter()
            record, entries, drawable = _predict_one(predictor, ref, image_id)
            files.add(record, entries, time.perf_counter() - started)
            if record.error:
                summary.errors.append(record.error)
                print(f"skipped: {record.error}", file=sys.stderr)
                continue
            summary.processed += 1
            if overlays and drawable is not None:
                image, dets = drawable
                files.save_overlay(_overlay_name(image_id, ref),
                                   draw_overlay(image, dets, score_threshold=draw_threshold, title=title))
    return summary


def _first_readable(refs: Sequence[ImageRef]) -> np.ndarray | None:
    for ref in refs:
        try:
            return load_image(ref.path)
        except ImageError:
            continue
    return None


def _predict_one(predictor: Predictor, ref: ImageRef,
                 image_id: int) -> tuple[ImageRecord, list[dict], tuple[np.ndarray, Detections] | None]:
    """The frame's record, its COCO results, and (image, detections) to draw; an unreadable
    image or a model failure is the record's error."""
    try:
        image = load_image(ref.path)
    except ImageError as err:
        return ImageRecord(image_id, str(ref.path), 0, 0, ref.camera, error=str(err)), [], None
    height, width = image.shape[:2]
    try:
        dets = predictor(image)
    except (RuntimeError, ValueError) as err:  # keep going with the other images
        message = f"{ref.path}: model failed on this image ({err}); report it with the image attached"
        return ImageRecord(image_id, str(ref.path), width, height, ref.camera, error=message), [], None
    record = ImageRecord(image_id, str(ref.path), width, height, ref.camera)
    return record, detections_to_coco(dets, image_id), (image, dets)


def _overlay_name(image_id: int, ref: ImageRef) -> str:
    return f"{image_id:04d}_{ref.camera + '_' if ref.camera else ''}{ref.path.stem}.png"
