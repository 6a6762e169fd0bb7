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

from ..compare import compare_detections, match_detections
from ..detections import Detections
from ..models.factory import RANDOM, LoadedModel, calibration_batch, create_model
from ..postprocess import to_detections
from ..preprocess import ResizeMode, preprocess
from .base import Runtime, get_runtime

MAX_CALIBRATION_FRAMES = 8
# A matched pair is "close" when its boxes are within CLOSE_BOX_PX pixels of the original image
# and its masks at CLOSE_MASK_IOU or more.
CLOSE_BOX_PX = 0.5
CLOSE_MASK_IOU = 0.99
# A conversion "agrees" on a frame when every detection is matched, at most ALLOWED_FLIPS
# matched pairs are not close, and masks agree to AGREE_MIN_MASK_IOU on average. Why flips
# are allowed: a box at the NMS threshold (or a proposal at the 1000th place) goes either way
# with the last bit of a convolution, and on chaotic random weights one such proposal can
# change a detection (measured: r50 CAM_BACK on OpenVINO, 1 pair 1.8 px apart; s101 CAM_FRONT
# on OpenVINO, 1 pair replaced). A conversion bug changes far more than two detections.
ALLOWED_FLIPS = 2
AGREE_MIN_MASK_IOU = 0.99  # mean over matched pairs (a flipped large mask drags the area-weighted one down)


@dataclass(frozen=True)
class Frame:
    name: str
    camera: str | None
    image: np.ndarray  # RGB uint8


@dataclass
class CheckRow:
    model: str
    runtime: str
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
    close_pairs: int  # matched pairs within CLOSE_BOX_PX and CLOSE_MASK_IOU
    eager_ms: float
    runtime_ms: float

    @property
    def flips(self) -> int:
        return self.matched - self.close_pairs

    @property
    def agrees(self) -> bool:
        return (self.matched == self.reference_count == self.candidate_count and self.flips <= ALLOWED_FLIPS
                and (self.matched == 0 or self.mean_mask_iou >= AGREE_MIN_MASK_IOU))

    def as_dict(self) -> dict:
        values = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}
        return {**values, "input_hw": list(self.input_hw), "flips": self.flips, "agrees": self.agrees}


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
) -> list[CheckRow]:
    """One row per (frame, runtime). Latencies are the best of ``repeats`` runs (network only:
    no preprocessing or mask pasting), after exporting/compiling and, with ``warmup``, one
    untimed run."""
    runtimes = [runtimes] if isinstance(runtimes, Runtime) else list(runtimes)
    mode = ResizeMode(mode)
    spec = loaded.spec
    threshold = loaded.model.detection_config.mask_thr_binary
    rows = []
    for frame in frames:
        tensor, meta = preprocess(frame.image, mode, size, spec.pixel_mean, spec.pixel_std)
        if warmup:
            loaded.model(tensor, [meta.img_shape])
        eager_ms, raw = _timed(lambda: loaded.model(tensor, [meta.img_shape])[0], repeats)
        reference = to_detections(raw, meta, threshold)
        for runtime in runtimes:
            runtime.prepare(tensor, meta.img_shape)
            if warmup:
                runtime(tensor, meta.img_shape)
            runtime_ms, out = _timed(lambda: runtime(tensor, meta.img_shape), repeats)
            candidate = to_detections(out, meta, threshold)
            agreement = compare_detections(reference, candidate)
            rows.append(CheckRow(
                model=spec.alias, runtime=runtime.name, image=frame.name, camera=frame.camera, mode=mode.value,
                input_hw=(int(tensor.shape[-2]), int(tensor.shape[-1])), eager_ms=eager_ms, runtime_ms=runtime_ms,
                close_pairs=close_pairs(reference, candidate), **agreement.as_dict(),
            ))
    return rows


def close_pairs(reference: Detections, candidate: Detections) -> int:
    """Matched pairs (as ``compare_detections`` matches them) that are close, see CLOSE_*."""
    count = 0
    for i, j in match_detections(reference, candidate):
        box_diff = float(np.abs(reference.boxes[i].astype(np.float64) - candidate.boxes[j]).max())
        union = np.logical_or(reference.masks[i], candidate.masks[j]).sum()
        iou = np.logical_and(reference.masks[i], candidate.masks[j]).sum() / union if union else 1.0
        count += box_diff <= CLOSE_BOX_PX and iou >= CLOSE_MASK_IOU
    return int(count)


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
) -> list[CheckRow]:
    """``maskbench check-conversion``: load the model, build the runtimes, check every frame."""
    mode = ResizeMode(mode)
    frames = load_frames(images, cameras)
    if weights == RANDOM:
        loaded = calibrated_random_model(model, frames, mode, size, seed)
    else:
        loaded = create_model(model, weights)
    runtimes = [get_runtime(name, loaded, mode=mode, threads=threads, cache_dir=cache_dir) for name in runtime_names]
    return check_conversion(loaded, runtimes, frames, mode, size, repeats)


def _timed(run, repeats: int):
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = run()
        best = min(best, (time.perf_counter() - start) * 1000.0)
    return best, result


COLUMNS = ("model", "runtime", "image", "matched", "close", "max box diff px", "max score diff", "min mask IoU",
           "mean mask IoU", "eager ms", "runtime ms", "agrees")


def _cells(row: CheckRow) -> list[str]:
    return [row.model, row.runtime, row.camera or row.image, f"{row.matched}/{row.reference_count}",
            f"{row.close_pairs}/{row.reference_count}", f"{row.max_box_diff:.2e}", f"{row.max_score_diff:.1e}",
            f"{row.min_mask_iou:.4f}", f"{row.mean_mask_iou:.4f}", f"{row.eager_ms:.0f}", f"{row.runtime_ms:.0f}",
            "yes" if row.agrees else "NO"]


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
    for package in ("onnx", "onnxruntime", "openvino"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    return info


__all__ = ["CheckRow", "Frame", "calibrated_random_model", "check_conversion", "format_table",
           "load_frames", "markdown_table", "run_check", "write_json"]
