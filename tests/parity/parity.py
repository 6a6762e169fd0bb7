"""Shared by the parity test and tools/parity_report.py: load MMDetection's fixtures, regenerate
the same weights with maskbench, run the same frames, compare."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

from maskbench.compare import Agreement, compare_detections
from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.detections import Detections
from maskbench.models.factory import calibration_batch, create_model
from maskbench.predict import Predictor
from maskbench.preprocess import ResizeMode
from maskbench.zoo import get_spec
from maskbench.postprocess import to_detections

HERE = Path(__file__).resolve().parent
FIXTURE_SETS = HERE / "fixtures"  # one folder per instruction set the fixtures were made on


def cpu_capability() -> str:
    """What oneDNN/ATen dispatch to here (``AVX2``, ``AVX512``...): it decides the last bits of
    every convolution, so MMDetection's outputs are reproduced bit for bit only on the same one."""
    return torch.backends.cpu.get_cpu_capability()


def fixture_dir() -> Path:
    """The fixtures made on this machine's instruction set, else the first set there is."""
    sets = sorted(p for p in FIXTURE_SETS.iterdir() if p.is_dir() and any(p.glob("*.json.gz")))
    for path in sets:
        if path.name == cpu_capability():
            return path
    return sets[0]


def same_kernels() -> bool:
    return fixture_dir().name == cpu_capability()


FIXTURES = fixture_dir()
PROBS_KEPT = 20


def frame_path(frame: str) -> Path:
    if frame == "nuscenes_front_right":
        return find_images(embedded_nuscenes(), cameras=["CAM_FRONT_RIGHT"])[0].path
    return HERE / "data" / "000000184324.jpg"


def available_fixtures() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in FIXTURES.glob("*.json.gz"))


def load_fixture(alias: str) -> dict:
    with gzip.open(FIXTURES / f"{alias}.json.gz", "rt") as f:
        return json.load(f)


def reference_detections(run: dict) -> Detections:
    masks = np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}) for r in run["masks_rle"]])
    return Detections(np.array(run["boxes"], np.float32), np.array(run["scores"], np.float32),
                      np.array(run["labels"], np.int64), masks.astype(bool))


def reference_mask_probs(run: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(run["mask_probs_f16"]), dtype=np.float16)
    return raw.reshape(-1, 28, 28).astype(np.float32)


@dataclass
class RunResult:
    run: str
    agreement: Agreement
    preprocessing_matches: bool
    mask_prob_max_diff: float  # over the first detections, when they are the same detections


def weights_fingerprint(state_dict: dict[str, torch.Tensor]) -> dict[str, float]:
    parts = {"all": [k for k, v in state_dict.items() if v.is_floating_point()]}
    parts["heads"] = [k for k in parts["all"] if k.startswith(("rpn_head.", "roi_head."))]
    return {name: float(sum(state_dict[k].double().abs().sum() for k in keys)) for name, keys in parts.items()}


FRAMES = ("nuscenes_front_right", "coco_184324")


def parity_model(alias: str, seed: int):
    """The random weights of the parity fixtures, calibrated on the parity frames themselves.

    Calibrating on the very frames compared keeps outputs unsaturated: calibrated on another
    frame, objectness and class scores reach exactly 1.0 for thousands of boxes on the COCO
    frame, and NMS then breaks those ties differently in MMCV (unstable sort) and torchvision
    (stable sort) -- a property of random weights, not a difference in the computation.
    """
    spec = get_spec(alias)
    images, shapes = calibration_batch(spec, [load_image(frame_path(f)) for f in FRAMES])
    return create_model(spec.name, "random", seed=seed, fixed_count=False, progress=False,
                        calibration_images=images, calibration_shapes=shapes)


def run_parity(alias: str) -> tuple[dict, list[RunResult]]:
    fixture = load_fixture(alias)
    loaded = parity_model(alias, fixture["seed"])
    fingerprint = weights_fingerprint(loaded.model.state_dict())
    results = []
    for run_name, run in fixture["runs"].items():
        frame, mode = run_name.split("/")
        predictor = Predictor(loaded, ResizeMode(mode))
        image = load_image(frame_path(frame))
        tensor, meta = predictor.prepare(image)
        raw = loaded.model(tensor, [meta.img_shape])[0]
        ours = to_detections(raw, meta)
        ref = reference_detections(run)
        same_input = (list(tensor.shape) == run["input_shape"] and list(meta.img_shape) == run["img_shape"][:2]
                      and abs(float(tensor.double().sum()) - run["input_sum"]) < 1e-3 * max(1.0, abs(run["input_sum"])))
        ref_probs = reference_mask_probs(run)
        k = min(len(ref_probs), raw.mask_probs.shape[0])
        same_first = k > 0 and np.array_equal(ours.labels[:k], ref.labels[:k])
        prob_diff = float(np.abs(raw.mask_probs[:k].numpy() - ref_probs[:k]).max()) if same_first else float("nan")
        results.append(RunResult(run_name, compare_detections(ref, ours), same_input, prob_diff))
    return {"fixture": fixture["weights_fingerprint"], "ours": fingerprint}, results
