"""RF-DETR-Seg through the family registry computes what rfdetr 1.11.2 computes.

The parity test (``test_parity_rfdetr.py``) proves the network and rfdetr's own pre- and
post-processing steps equal rfdetr's in float64. This test runs what ``maskbench predict`` runs
instead: the zoo row, ``create_model`` with the registry's random weights (the oracle's recipe,
at the fixture's seed), the torch-free preprocessing (``pipeline/preprocess``: x / 255 resized
with PyTorch's arithmetic), the detector's top-k, and the torch-free decoding
(``pipeline/postprocess.resize_query_masks``), against the same fixtures. Detections come out in
float32, so the float64 run is held to float32's rounding of its outputs; the float32 run to ten
times rfdetr's own float32 spread, as in the parity test.
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils

from maskbench.models.detector import to_detections
from maskbench.models.factory import create_model
from maskbench.models.inputs import preprocess
from maskbench.models.rfdetr.postprocess import slot_to_label
from maskbench.pipeline.preprocess import ResizeMode

from .rfdetr_parity import REPO, Tolerance, decode, load_fixture

ALIAS, FRAME = "rfdetr-seg-n", "coco_184324"
# float64 network, float32 detections: a box of up to 640 px rounds by 3e-5 px, a score by 3e-8
FLOAT64_OUT = Tolerance(min_matched=0, box_px=1e-4, score=1e-7, min_mask_iou=0.9999, area_rel=1e-4, input_rel=1e-12)


def registry_run(dtype: torch.dtype) -> tuple[dict, dict]:
    """(the fixture's run, what maskbench's registry path gives on the same frame)."""
    fixture = load_fixture(ALIAS)
    run = fixture["runs"][FRAME]
    loaded = create_model(ALIAS, "random", seed=fixture["seed"], dtype=dtype)
    image = decode(REPO / run["file"])
    tensor, meta = preprocess(image, ResizeMode.STRETCH, None, loaded.spec.input_format, dtype)
    raw = loaded.model(tensor, [meta.img_shape])[0]
    detections = to_detections(raw, meta, loaded.spec.family, loaded.model.detection_config.mask_thr_binary)
    return run, {"input_sum": float(tensor.double().sum()), "detections": detections}


def compare(run: dict, ours: dict) -> dict:
    """Pairs the fixture's top detections (in a COCO class) with ours in order."""
    labels = slot_to_label(np.array(run["labels"]))
    keep = np.flatnonzero(labels >= 0)
    d = ours["detections"]
    count = len(keep)
    same_labels = bool((d.labels[:count] == labels[keep]).all())
    boxes = np.abs(d.boxes[:count].astype(np.float64) - np.array(run["boxes"])[keep]).max()
    scores = np.abs(d.scores[:count].astype(np.float64) - np.array(run["scores"])[keep]).max()
    areas = d.masks[:count].reshape(count, -1).sum(1)
    ref_areas = np.array(run["mask_areas"])[keep]
    ious = []
    for k, i in enumerate(keep):
        if i < len(run["masks_rle"]):
            rle = run["masks_rle"][i]
            ref = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            union = np.logical_or(ref, d.masks[k]).sum()
            ious.append(np.logical_and(ref, d.masks[k]).sum() / union if union else 1.0)
    return {"count": count, "same_labels": same_labels, "box": float(boxes), "score": float(scores),
            "area_rel": float((np.abs(areas - ref_areas) / np.maximum(ref_areas, 1)).max()),
            "min_iou": float(min(ious)), "input_rel": abs(ours["input_sum"] - run["input_sum"]) / abs(run["input_sum"])}


def check(found: dict, tolerance: Tolerance) -> None:
    assert found["count"] >= 90 and found["same_labels"], found
    assert found["input_rel"] <= tolerance.input_rel, found
    assert found["box"] <= tolerance.box_px and found["score"] <= tolerance.score, found
    assert found["min_iou"] >= tolerance.min_mask_iou and found["area_rel"] <= tolerance.area_rel, found


def test_float64_registry_path_equals_rfdetr():
    run, ours = registry_run(torch.float64)
    check(compare(run, ours), FLOAT64_OUT)


def test_float32_registry_path_within_rfdetrs_own_spread():
    from .test_parity_rfdetr import float32_tolerance

    run, ours = registry_run(torch.float32)
    check(compare(run, ours), float32_tolerance(run["float32_spread"]))


def test_a_changed_pixel_scale_fails():
    """The input check can fail: x / 256 instead of rfdetr's x / 255."""
    import dataclasses

    from maskbench.zoo import get_spec

    run = load_fixture(ALIAS)["runs"][FRAME]
    changed = dataclasses.replace(get_spec(ALIAS).input_format, pixel_divisor=256.0)
    tensor, _ = preprocess(decode(REPO / run["file"]), ResizeMode.STRETCH, None, changed, torch.float64)
    assert abs(float(tensor.double().sum()) - run["input_sum"]) / abs(run["input_sum"]) > FLOAT64_OUT.input_rel
