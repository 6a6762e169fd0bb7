"""Does a runtime keep the eager model's answers? Run both on the same frames and compare.

For each frame: eager PyTorch (the reference) and the runtime get the same preprocessed tensor;
both outputs go through the same ``postprocess.to_detections`` and are compared with
``compare.compare_detections`` (detections matched by class and box IoU; worst box and score
differences; mask IoU per detection and area-weighted).

Random weights are calibrated on the checked frames themselves (all of them, as one batch).
Calibrated on one frame only, random weights saturate on the others (measured: RPN objectness
logits up to 64 on the embedded back-camera frames, hundreds of scores exactly 1.0): tied
scores are then ordered by each runtime's sort and NMS, which is implementation-defined, and
the comparison measures tie-breaking instead of the conversion.

Reduced precision (fp16, bf16, int8) is checked against the same fp32 eager reference with its
own, looser :class:`Tolerance`: it is expected to move boxes and masks a little and to swap a few
detections at the margins, but a model that loses more than that (MMDeploy users saw Swin-T
lose ~5 AP in TensorRT fp16) is reported plainly as broken by that precision. Judge it with
official weights: calibrated random weights amplify rounding about 100x (measured on r50 at
320x192: 1e-3 relative noise on the input moves the FPN features by 10-20%, rounding the
weights to fp16 alone by 4-8%; bf16 autocast matched 34 of 100 detections), so any reduced
precision "breaks" a random-weight model. So every row also compares the FPN outputs (P2..P6,
through the runtime's feature tap, :mod:`.features`): lowest cosine and highest relative error
over the levels, which judge a conversion or a precision without trained weights (fp32 ONNX
Runtime / OpenVINO: relative error ~1e-4; int8 on random r50: cosine ~0.66, see
docs/precision.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..compare import PairDifferences, agreement_of, pair_differences
from ..models.factory import RANDOM, LoadedModel, calibration_batch, create_model
from ..postprocess import to_detections
from ..preprocess import ResizeMode, preprocess
from .base import Runtime, get_runtime
from .features import (
    FeatureTap,
    FeatureTapUnavailable,
    compare_features,
    eager_outputs,
    feature_tap,
    reference_features,
)

MAX_CALIBRATION_FRAMES = 8


@dataclass(frozen=True)
class Tolerance:
    """When a runtime "agrees" with eager on a frame.

    A matched pair is "close" when its boxes are within ``close_box_px`` pixels of the original
    image and its masks at ``close_mask_iou`` or more. A reference detection that is unmatched
    or not close is "changed". The frame agrees when at most ``allowed_changes`` (or, if more,
    ``allowed_changed_fraction`` of the reference's detections) are changed, masks agree to
    ``min_mean_mask_iou`` on average over matched pairs (the area-weighted IoU is dragged down
    by one flipped large mask), and, if ``all_matched``, every detection on both sides is
    matched.
    """

    close_box_px: float
    close_mask_iou: float
    allowed_changes: int
    allowed_changed_fraction: float
    min_mean_mask_iou: float
    all_matched: bool

    def allowed(self, reference_count: int) -> int:
        return max(self.allowed_changes, int(self.allowed_changed_fraction * reference_count))

    def describe(self) -> str:
        return (f"close = boxes within {self.close_box_px:g} px and mask IoU >= {self.close_mask_iou:g}; at most "
                f"{self.allowed_changes} or {self.allowed_changed_fraction:.0%} of detections changed; mean mask IoU "
                f">= {self.min_mean_mask_iou:g}")


# fp32: every detection matched, at most 2 not close. Why 2: a box at the NMS threshold (or a
# proposal at the 1000th place) goes either way with the last bit of a convolution, and on
# chaotic random weights one such proposal can change a detection (measured: r50 CAM_BACK on
# OpenVINO, 1 pair 1.8 px apart; s101 CAM_FRONT on OpenVINO, 1 pair replaced). A conversion
# bug changes far more than two detections.
FP32_TOLERANCE = Tolerance(close_box_px=0.5, close_mask_iou=0.99, allowed_changes=2, allowed_changed_fraction=0.0,
                           min_mean_mask_iou=0.99, all_matched=True)
# fp16/bf16: 11 (fp16) or 8 (bf16) mantissa bits instead of 24 move every box and mask a little
# and swap detections whose scores sit close together; up to 10% of the detections may change
# (unmatched, or boxes more than 2 px apart, or masks below IoU 0.9) and masks must still agree
# to 0.95 on average. Beyond that the precision changes what the model finds.
REDUCED_TOLERANCE = Tolerance(close_box_px=2.0, close_mask_iou=0.9, allowed_changes=2, allowed_changed_fraction=0.1,
                              min_mean_mask_iou=0.95, all_matched=False)
# int8: activations per tensor on 256 levels over the range calibration measured, so small
# activations next to a large one keep fewer significant bits than bf16 gives them; weights per
# channel. Allowed: up to 15% of the detections changed (unmatched, boxes more than 3 px apart,
# masks below IoU 0.85) and masks at 0.93 on average. A judgement, one step looser than bf16,
# not a measurement: no official weights could be checked where this was written (see
# docs/precision.md), and random weights are no guide (below).
INT8_TOLERANCE = Tolerance(close_box_px=3.0, close_mask_iou=0.85, allowed_changes=2, allowed_changed_fraction=0.15,
                           min_mean_mask_iou=0.93, all_matched=False)
TOLERANCES = {"fp32": FP32_TOLERANCE, "fp16": REDUCED_TOLERANCE, "bf16": REDUCED_TOLERANCE, "int8": INT8_TOLERANCE}
# Kept for callers of the fp32 thresholds by name.
CLOSE_BOX_PX, CLOSE_MASK_IOU = FP32_TOLERANCE.close_box_px, FP32_TOLERANCE.close_mask_iou
ALLOWED_FLIPS, AGREE_MIN_MASK_IOU = FP32_TOLERANCE.allowed_changes, FP32_TOLERANCE.min_mean_mask_iou


@dataclass(frozen=True)
class Frame:
    name: str
    camera: str | None
    image: np.ndarray  # RGB uint8


@dataclass
class CheckRow:
    model: str
    runtime: str
    precision: str
    image: str
    camera: str | None
    mode: str
    input_hw: tuple[int, int]  # the (padded) tensor the network saw
    reference_count: int
    candidate_count: int
    matched: int
    max_box_diff: float  # pixels of the original image, over matched pairs
    max_score_diff: float
    min_mask_iou: float
    mean_mask_iou: float
    area_weighted_mask_iou: float
    close_pairs: int  # matched pairs close by this precision's tolerance
    eager_ms: float
    runtime_ms: float
    # FPN outputs P2..P6 against eager fp32 (runtimes/features.py): lowest cosine and highest
    # relative error over the levels; NaN where the runtime has no feature tap (TensorRT).
    feature_cosine: float = float("nan")
    feature_rel_error: float = float("nan")

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.precision]

    @property
    def flips(self) -> int:
        """Matched pairs that are not close."""
        return self.matched - self.close_pairs

    @property
    def changed(self) -> int:
        """Reference detections not reproduced closely (unmatched, or matched but not close)."""
        return self.reference_count - self.close_pairs

    @property
    def agrees(self) -> bool:
        tol = self.tolerance
        all_matched = self.matched == self.reference_count == self.candidate_count
        return ((all_matched or not tol.all_matched) and self.changed <= tol.allowed(self.reference_count)
                and (self.matched == 0 or self.mean_mask_iou >= tol.min_mean_mask_iou))

    def verdict(self) -> str | None:
        """One plain line when this frame disagrees, else ``None``."""
        if self.agrees:
            return None
        where = f"{self.model} on {self.runtime}, frame {self.camera or self.image}"
        what = (f"changes {self.changed} of {self.reference_count} detections (matched {self.matched}, mean mask IoU "
                f"{self.mean_mask_iou:.3f})")
        if self.precision == "fp32":
            return f"{where}: the conversion {what}: it does not keep the eager model's answers"
        return (f"{where}: {self.precision} {what}: this precision breaks the model at these tolerances "
                f"({self.tolerance.describe()})")

    def as_dict(self) -> dict:
        values = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}
        return {**values, "input_hw": list(self.input_hw), "flips": self.flips, "changed": self.changed,
                "agrees": self.agrees}


def load_frames(images: Path | str | None = None, cameras: Sequence[str] | None = None) -> list[Frame]:
    """Frames from a file/folder/nuScenes tree (default: the six embedded nuScenes frames)."""
    from ..data.images import load_image
    from ..data.sources import embedded_nuscenes, find_images

    refs = find_images(images if images is not None else embedded_nuscenes(), cameras)
    return [Frame(ref.path.name, ref.camera, load_image(ref.path)) for ref in refs]


def calibrated_random_model(model: str, frames: Sequence[Frame], mode: ResizeMode, size: tuple[int, int] | None,
                            seed: int = 0) -> LoadedModel:
    """Random weights calibrated on ``frames`` (at most :data:`MAX_CALIBRATION_FRAMES`), each
    resized to the padded input size the first frame gets in ``mode`` (so one batch)."""
    from ..zoo import get_spec

    spec = get_spec(model)
    _, meta = preprocess(frames[0].image, mode, size, spec.pixel_mean, spec.pixel_std)
    height, width = meta.pad_shape
    images, shapes = calibration_batch(spec, [f.image for f in frames[:MAX_CALIBRATION_FRAMES]], (width, height))
    return create_model(model, RANDOM, calibration_images=images, calibration_shapes=shapes, seed=seed)


def check_conversion(
    loaded: LoadedModel,
    runtimes: Runtime | Sequence[Runtime],
    frames: Sequence[Frame],
    mode: ResizeMode | str = ResizeMode.STRETCH,
    size: tuple[int, int] | None = None,
    repeats: int = 1,
    warmup: bool = True,
    features: bool = True,
) -> list[CheckRow]:
    """One row per (frame, runtime). Latencies are the best of ``repeats`` runs (network only:
    no preprocessing or mask pasting), after exporting/compiling and, with ``warmup``, one
    untimed run. With ``features``, the FPN outputs are compared through each runtime's feature
    tap (an extra compilation for graph runtimes, not timed); without, those columns are NaN."""
    runtimes = [runtimes] if isinstance(runtimes, Runtime) else list(runtimes)
    taps = {id(runtime): _tap_or_none(runtime) if features else None for runtime in runtimes}
    mode = ResizeMode(mode)
    spec = loaded.spec
    threshold = loaded.model.detection_config.mask_thr_binary
    rows = []
    for frame in frames:
        tensor, meta = preprocess(frame.image, mode, size, spec.pixel_mean, spec.pixel_std)
        eager_features = None
        if warmup:  # the untimed call also gives the FPN outputs
            eager_features = eager_outputs(loaded, tensor, meta.img_shape)[1]
        elif any(taps.values()):
            eager_features = reference_features(loaded, tensor)
        eager_ms, raw = _timed(lambda: loaded.model(tensor, [meta.img_shape])[0], repeats)
        reference = to_detections(raw, meta, threshold)
        for runtime in runtimes:
            runtime.prepare(tensor, meta.img_shape)
            if warmup:
                runtime(tensor, meta.img_shape)
            runtime_ms, out = _timed(lambda: runtime(tensor, meta.img_shape), repeats)
            candidate = to_detections(out, meta, threshold)
            differences = pair_differences(reference, candidate)
            agreement = agreement_of(differences, len(reference), len(candidate))
            precision = getattr(runtime, "precision", "fp32")
            tap = taps[id(runtime)]
            levels = compare_features(eager_features, tap(tensor, meta.img_shape)) if tap else []
            features = {"feature_cosine": min(c for c, _ in levels), "feature_rel_error": max(e for _, e in levels)} \
                if levels else {}
            rows.append(CheckRow(
                model=spec.alias, runtime=runtime.name, precision=precision, image=frame.name, camera=frame.camera,
                mode=mode.value, input_hw=(int(tensor.shape[-2]), int(tensor.shape[-1])), eager_ms=eager_ms,
                runtime_ms=runtime_ms, close_pairs=close_pairs(differences, TOLERANCES[precision]),
                **agreement.as_dict(), **features,
            ))
    return rows


def _tap_or_none(runtime: Runtime) -> FeatureTap | None:
    try:
        return feature_tap(runtime)
    except FeatureTapUnavailable:
        return None


def close_pairs(differences: PairDifferences, tolerance: Tolerance = FP32_TOLERANCE) -> int:
    """Matched pairs within ``tolerance``'s box distance and mask IoU."""
    close = (differences.box_diff <= tolerance.close_box_px) & (differences.mask_iou >= tolerance.close_mask_iou)
    return int(close.sum())


def run_check(
    model: str,
    runtime_names: Sequence[str],
    weights: str = RANDOM,
    images: Path | str | None = None,
    cameras: Sequence[str] | None = None,
    mode: ResizeMode | str = ResizeMode.STRETCH,
    size: tuple[int, int] | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
    repeats: int = 1,
    seed: int = 0,
    precision: str = "fp32",
    calibration_images: Sequence[np.ndarray] | None = None,
) -> list[CheckRow]:
    """``maskbench check-conversion``: load the model, build the runtimes (all in ``precision``;
    int8 calibrated on ``calibration_images``, default the embedded frames), check every frame
    against eager fp32."""
    from .base import require_runtime

    for name in runtime_names:  # refused in one line before the model is built
        require_runtime(name, precision)
    mode = ResizeMode(mode)
    frames = load_frames(images, cameras)
    if weights == RANDOM:
        loaded = calibrated_random_model(model, frames, mode, size, seed)
    else:
        loaded = create_model(model, weights)
    runtimes = [get_runtime(name, loaded, mode=mode, threads=threads, cache_dir=cache_dir, precision=precision,
                            calibration_images=calibration_images) for name in runtime_names]
    return check_conversion(loaded, runtimes, frames, mode, size, repeats)


def _timed(run, repeats: int):
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = run()
        best = min(best, (time.perf_counter() - start) * 1000.0)
    return best, result


COLUMNS = ("model", "runtime", "precision", "image", "FPN cosine", "FPN rel err", "matched", "close",
           "max box diff px", "max score diff", "min mask IoU", "mean mask IoU", "eager ms", "runtime ms", "agrees")


def _cells(row: CheckRow) -> list[str]:
    return [row.model, row.runtime, row.precision, row.camera or row.image, _number(row.feature_cosine, ".4f"),
            _number(row.feature_rel_error, ".2e"), f"{row.matched}/{row.reference_count}",
            f"{row.close_pairs}/{row.reference_count}", f"{row.max_box_diff:.2e}", f"{row.max_score_diff:.1e}",
            f"{row.min_mask_iou:.4f}", f"{row.mean_mask_iou:.4f}", f"{row.eager_ms:.0f}", f"{row.runtime_ms:.0f}",
            "yes" if row.agrees else "NO"]


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "-"


def format_table(rows: Sequence[CheckRow]) -> str:
    table = [list(COLUMNS)] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)


def markdown_table(rows: Sequence[CheckRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_json(rows: Sequence[CheckRow], path: Path, info: dict | None = None) -> Path:
    """Rows (plus ``info``: versions, threads...) as JSON, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"info": info or {}, "rows": [r.as_dict() for r in rows]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def environment_info(threads: int | None = None) -> dict:
    import platform

    import torchvision

    info = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "runtime_threads": threads or torch.get_num_threads()}
    for package in ("onnx", "onnxruntime", "openvino", "tensorrt"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    return info


__all__ = ["CheckRow", "Frame", "TOLERANCES", "Tolerance", "calibrated_random_model", "check_conversion",
           "format_table", "load_frames", "markdown_table", "run_check", "write_json"]
