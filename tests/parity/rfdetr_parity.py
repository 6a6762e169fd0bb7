"""Shared by the RF-DETR-Seg parity test and tools: load rfdetr's float64 fixtures, regenerate the
same random weights with maskbench, run the same frames, compare (docs/rfdetr.md)."""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from maskbench.models.rfdetr import postprocess
from maskbench.models.rfdetr.model import RFDETRSeg
from maskbench.models.rfdetr.random_weights import RECIPE, fingerprint, random_state_dict
from maskbench.zoo.rfdetr_sizes import get_size

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = HERE / "fixtures_rfdetr"
FRAMES = ("nuscenes_front_right", "coco_184324")


def available_fixtures() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in FIXTURES.glob("*.json.gz"))


@functools.lru_cache(maxsize=2)
def load_fixture(alias: str) -> dict:
    with gzip.open(FIXTURES / f"{alias}.json.gz", "rt") as f:
        return json.load(f)


@functools.lru_cache(maxsize=1)
def parity_models(alias: str) -> tuple[RFDETRSeg, RFDETRSeg, float]:
    """(float64 model, float32 model with the same weights rounded, weights fingerprint)."""
    fixture = load_fixture(alias)
    assert fixture["recipe"] == RECIPE, f"fixture made with weights recipe {fixture['recipe']}, this code has {RECIPE}"
    with torch.device("meta"):  # no default initialisation: every tensor is replaced
        double = RFDETRSeg(get_size(alias))
    shapes = {k: tuple(v.shape) for k, v in double.state_dict().items()}
    weights = random_state_dict(shapes, fixture["seed"])
    double.load_state_dict(weights, assign=True)
    double = double.eval()
    return double, copy.deepcopy(double).float(), fingerprint(weights)


def decode(path: Path) -> np.ndarray:
    """Pillow's RGB decode, as rfdetr's predict decodes a path (and as the oracle did)."""
    return np.array(Image.open(path).convert("RGB"))


@dataclass(frozen=True)
class RunVerdict:
    run: str
    precision: str
    pixels_equal: bool  # the decoded frame equals the oracle's
    input_rel_diff: float
    count: int  # detections compared (the fixture's top KEPT)
    same_order: int  # leading detections with the same slot and query as rfdetr's
    matched: int  # detections with the same slot and query somewhere in the top KEPT
    max_box_diff: float  # pixels, over matched
    max_score_diff: float
    min_mask_iou: float  # the first KEPT_MASKS matched masks, against rfdetr's pixels
    max_area_rel_diff: float  # all matched masks' pixel counts


@dataclass(frozen=True)
class Tolerance:
    min_matched: int
    box_px: float
    score: float
    min_mask_iou: float
    area_rel: float
    input_rel: float

    def failures(self, verdict: RunVerdict) -> list[str]:
        checks = {
            "decoded pixels differ from the oracle's (another JPEG decoder?)": verdict.pixels_equal,
            f"input sum off by {verdict.input_rel_diff:.3g}": verdict.input_rel_diff <= self.input_rel,
            f"{verdict.matched}/{verdict.count} detections matched": verdict.matched >= self.min_matched,
            f"box diff {verdict.max_box_diff:.3g} px": verdict.max_box_diff <= self.box_px,
            f"score diff {verdict.max_score_diff:.3g}": verdict.max_score_diff <= self.score,
            f"mask IoU {verdict.min_mask_iou:.6f}": verdict.min_mask_iou >= self.min_mask_iou,
            f"mask area off by {verdict.max_area_rel_diff:.3g}": verdict.max_area_rel_diff <= self.area_rel,
        }
        return [what for what, ok in checks.items() if not ok]


def run_once(model: RFDETRSeg, fixture: dict, frame: str) -> RunVerdict:
    run = fixture["runs"][frame]
    dtype = next(model.parameters()).dtype
    image = decode(REPO / run["file"])
    pixels_equal = hashlib.sha256(image.tobytes()).hexdigest() == run["pixels_sha256"]
    tensor = postprocess.preprocess(image, fixture["resolution"], dtype)
    input_rel = abs(float(tensor.double().sum()) - run["input_sum"]) / max(1.0, abs(run["input_sum"]))
    raw = model.raw_outputs(tensor)
    hw = (image.shape[0], image.shape[1])
    chosen = postprocess.select(raw, 0, hw, fixture["num_select"])
    kept = fixture["kept"]
    slots, queries = chosen.slots[:kept].numpy(), chosen.queries[:kept].numpy()
    ref_slots, ref_queries = np.array(run["labels"]), np.array(run["queries"])
    same = (slots == ref_slots) & (queries == ref_queries)
    same_order = int(np.argmin(same)) if not same.all() else kept
    ours = {(int(s), int(q)): i for i, (s, q) in enumerate(zip(chosen.slots.numpy(), chosen.queries.numpy()))}
    ref_pairs = [(int(s), int(q)) for s, q in zip(ref_slots, ref_queries)]
    pairs = [(i, ours[pair]) for i, pair in enumerate(ref_pairs) if pair in ours]
    ref_boxes, ref_scores = np.array(run["boxes"]), np.array(run["scores"])
    boxes, scores = chosen.boxes.double().numpy(), chosen.scores.double().numpy()
    box_diff = max((float(np.abs(ref_boxes[i] - boxes[j]).max()) for i, j in pairs), default=0.0)
    score_diff = max((abs(float(ref_scores[i] - scores[j])) for i, j in pairs), default=0.0)
    masks = postprocess.upsample_masks(raw.mask_logits[0][chosen.queries[[j for _, j in pairs]]].numpy(), hw)
    ref_areas = np.array(run["mask_areas"])[[i for i, _ in pairs]]
    areas = masks.areas()
    area_rel = float((np.abs(areas - ref_areas) / np.maximum(ref_areas, 1)).max()) if pairs else 0.0
    ious = []
    for k, (i, _) in enumerate(pairs):
        if i < len(run["masks_rle"]):
            rle = run["masks_rle"][i]
            ref = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            mask = masks.full(k)
            union = np.logical_or(ref, mask).sum()
            ious.append(np.logical_and(ref, mask).sum() / union if union else 1.0)
    return RunVerdict(frame, str(dtype).removeprefix("torch."), pixels_equal, input_rel, kept, same_order, len(pairs),
                      box_diff, score_diff, float(min(ious, default=1.0)), area_rel)
