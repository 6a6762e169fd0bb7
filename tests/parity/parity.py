"""Shared by the parity test and tools/parity_report.py: load MMDetection's float64 fixtures,
regenerate the same weights with maskbench, run the same frames, compare.

Everything that decides the verdict runs in float64 on both sides (the weights' calibration
included), so it does not depend on the CPU's float32 kernels: see docs/parity.md.
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.models.detector import RawDetections, to_detections
from maskbench.models.factory import LoadedModel, calibration_batch, create_model
from maskbench.models.inputs import preprocess
from maskbench.pipeline.detections import Detections
from maskbench.pipeline.postprocess import rescale_boxes
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.verify.compare import Agreement, compare_detections
from maskbench.zoo import RTMDET_INS, get_spec

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
FRAMES = ("nuscenes_front_right", "coco_184324")
MODES = ("stretch", "keep_ratio")
RUNS = tuple(f"{frame}/{mode}" for mode in MODES for frame in FRAMES)


def frame_path(frame: str) -> Path:
    if frame == "nuscenes_front_right":
        return find_images(embedded_nuscenes(), cameras=["CAM_FRONT_RIGHT"])[0].path
    return HERE / "data" / "000000184324.jpg"


def available_fixtures() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in FIXTURES.glob("*.json.gz"))


@functools.lru_cache(maxsize=2)
def load_fixture(alias: str) -> dict:
    with gzip.open(FIXTURES / f"{alias}.json.gz", "rt") as f:
        return json.load(f)


def reference_detections(run: dict) -> Detections:
    masks = np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}) for r in run["masks_rle"]])
    return Detections(np.array(run["boxes"], np.float64), np.array(run["scores"], np.float64),
                      np.array(run["labels"], np.int64), masks.astype(bool))


def reference_mask_probs(run: dict) -> np.ndarray | None:
    """Mask R-CNN's first 28x28 mask probabilities (RTMDet-Ins fixtures hold none)."""
    if run.get("mask_probs_f32") is None:
        return None
    raw = np.frombuffer(base64.b64decode(run["mask_probs_f32"]), dtype=np.float32)
    return raw.reshape(-1, 28, 28)


def weights_fingerprint(state_dict: dict[str, torch.Tensor]) -> dict[str, float]:
    parts = {"all": [k for k, v in state_dict.items() if v.is_floating_point()]}
    parts["heads"] = [k for k in parts["all"] if k.startswith(("rpn_head.", "roi_head.", "bbox_head."))]
    return {name: float(sum(state_dict[k].double().abs().sum() for k in keys)) for name, keys in parts.items()}


def parity_model(alias: str, seed: int) -> LoadedModel:
    """The float64 random weights of the parity fixtures, calibrated on the parity frames.

    Calibrating on the very frames compared keeps outputs unsaturated: calibrated on another
    frame, objectness and class scores reach exactly 1.0 for thousands of boxes on the COCO
    frame, and NMS then breaks those ties differently in MMCV (unstable sort) and torchvision
    (stable sort) -- a property of random weights, not a difference in the computation.
    Calibration runs the network, so it runs in float64 too: in float32 the calibrated weights
    themselves followed the CPU's kernels (ResNeSt's heads by 0.24%).
    """
    spec = get_spec(alias)
    frames = [load_image(frame_path(f)) for f in FRAMES]
    if spec.family is RTMDET_INS:
        # both modes give 640x640 inputs: calibrated on all four runs' own inputs
        inputs = [preprocess(frame, ResizeMode(mode), None, spec.input_format, torch.float64)
                  for mode in MODES for frame in frames]
        images, shapes = torch.cat([t for t, _ in inputs]), [m.img_shape for _, m in inputs]
    else:
        images, shapes = calibration_batch(spec, frames, dtype=torch.float64)
    return create_model(spec.name, "random", seed=seed, fixed_count=False, progress=False,
                        calibration_images=images, calibration_shapes=shapes, dtype=torch.float64)


@functools.lru_cache(maxsize=1)
def parity_models(alias: str) -> tuple[LoadedModel, LoadedModel]:
    """(float64, float32) models: the float32 one holds the same weights rounded."""
    double = parity_model(alias, load_fixture(alias)["seed"])
    single = LoadedModel(copy.deepcopy(double.model).float(), double.spec, double.weights)
    return double, single


@dataclass
class RunResult:
    run: str
    precision: str
    agreement: Agreement
    input_difference: float  # |sum of our input tensor - MMDetection's|, relative
    mask_prob_max_diff: float  # over the first detections, when they are the same detections


def run_once(loaded: LoadedModel, fixture_run: dict, run_name: str) -> RunResult:
    frame, mode = run_name.split("/")
    dtype = next(loaded.model.parameters()).dtype
    spec = loaded.spec
    tensor, meta = preprocess(load_image(frame_path(frame)), ResizeMode(mode), None, spec.input_format,
                              dtype)
    raw = loaded.model(tensor, [meta.img_shape])[0]
    masks = to_detections(raw, meta, spec.family, loaded.model.detection_config.mask_thr_binary).masks
    # boxes in the network's precision, as MMDetection rescales them
    boxes = rescale_boxes(raw.boxes, meta, by_reciprocal=spec.family is RTMDET_INS)
    ours = Detections(boxes.double().numpy(), raw.scores.double().numpy(), raw.labels.numpy(), masks)
    ref = reference_detections(fixture_run)
    same_shape = (list(tensor.shape) == fixture_run["input_shape"]
                  and list(meta.img_shape) == fixture_run["img_shape"][:2])
    input_difference = (abs(float(tensor.double().sum()) - fixture_run["input_sum"])
                        / max(1.0, abs(fixture_run["input_sum"]))
                        if same_shape else float("inf"))
    ref_probs = reference_mask_probs(fixture_run)
    prob_diff = float("nan")
    if ref_probs is not None and isinstance(raw, RawDetections):
        k = min(len(ref_probs), raw.masks.shape[0])
        if k > 0 and np.array_equal(ours.labels[:k], ref.labels[:k]):
            prob_diff = float(np.abs(raw.masks[:k].double().numpy() - ref_probs[:k]).max())
    return RunResult(run_name, str(dtype).removeprefix("torch."), compare_detections(ref, ours), input_difference,
                     prob_diff)


def run_parity(alias: str, precision: str, runs: tuple[str, ...] = RUNS) -> list[RunResult]:
    double, single = parity_models(alias)
    loaded = double if precision == "float64" else single
    fixture = load_fixture(alias)
    return [run_once(loaded, fixture["runs"][name], name) for name in runs]
