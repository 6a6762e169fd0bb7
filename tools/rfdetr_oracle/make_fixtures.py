"""rfdetr 1.11.2's own RF-DETR-Seg outputs, in float64, as parity fixtures.

Run in the reference environment (not the project's venv), from the repository root:

    python3 -m venv /work/rfdetr-venv
    /work/rfdetr-venv/bin/pip install rfdetr==1.11.2 torch==2.14.1 torchvision==0.29.1 pycocotools
    /work/rfdetr-venv/bin/python tools/rfdetr_oracle/make_fixtures.py [--sizes rfdetr-seg-n ...]

For each size rfdetr builds its own model (``RFDETRSeg*(pretrain_weights=None)``: the seg models'
12-pixel patches rule out DINOv2's hub weights, so nothing is downloaded), which is filled with
maskbench's deterministic random weights (``random_weights.py``, loaded by path: torch only, the
same recipe regenerates them on our side from (seed, recipe) alone), then:
- float64 (``torch.set_default_dtype(float64)`` and ``model.double()``): the fixture. The steps of
  rfdetr's ``predict`` are run one by one (its uint8 -> float division, ``F.resize`` without
  antialias, ``F.normalize`` with its means and stds, the network, its ``PostProcess`` with no
  score threshold) because ``predict`` itself returns float32 boxes and scores;
- float32 (the same weights rounded): not stored, only its agreement with the float64 run, i.e.
  rfdetr's own float32 spread; and a check that these steps equal ``predict``'s own answer.
Frames are decoded with Pillow, as ``predict`` decodes a path; the fixture keeps a SHA-256 of the
decoded pixels so a decoder difference on the test side is named, not mistaken for a model one.
Saved per size (gzip JSON, small): the top ``KEPT`` detections (boxes, scores, COCO-id slots,
query indices, mask pixel counts), the first ``KEPT_MASKS`` masks as COCO RLE, the weights'
fingerprint, the input's sum.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "parity" / "fixtures_rfdetr"
PACKAGE = REPO / "src" / "maskbench" / "models" / "rfdetr"
KEPT = 100
KEPT_MASKS = 20  # full-frame masks are large even as RLE: the rest are kept as pixel counts
FRAMES = {
    "nuscenes_front_right": REPO / "src/maskbench/assets/nuscenes/samples/CAM_FRONT_RIGHT"
    / "n015-2018-07-24-11-22-45+0800__CAM_FRONT_RIGHT__1532402927620339.jpg",
    "coco_184324": REPO / "tests/parity/data/000000184324.jpg",
}


def load_by_path(name: str, folder: Path = PACKAGE):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


random_weights = load_by_path("random_weights")
sizes = load_by_path("rfdetr_sizes", REPO / "src/maskbench/zoo")


def decode(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def build(size, seed: int):
    """rfdetr's model of this size with the random weights, float64; and the weights."""
    import rfdetr

    wrapper = getattr(rfdetr, size.rfdetr_class)(pretrain_weights=None, device="cpu")
    net = wrapper.model.model
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items() if v.is_floating_point()}
    weights = random_weights.random_state_dict(shapes, seed)
    missing, unexpected = net.load_state_dict(weights, strict=False)
    assert set(missing) <= {"_kp_active_mask"} and not unexpected, (missing, unexpected)
    net.eval()
    loaded = {k: v for k, v in net.state_dict().items() if k in weights}
    assert random_weights.fingerprint(loaded) == random_weights.fingerprint(weights), "weights changed on loading"
    return wrapper, net, weights


def run(wrapper, net, image: np.ndarray, dtype: torch.dtype) -> tuple[dict, float]:
    """predict's steps in ``dtype``: (PostProcess result for the image, input tensor sum)."""
    from rfdetr.detr import _uint8_chw_to_float, _uint8_image_to_chw_view
    from torchvision.transforms import functional as F  # noqa: N812

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        chw = _uint8_chw_to_float(_uint8_image_to_chw_view(image), torch.tensor(255, dtype=dtype))
        resolution = wrapper.model.resolution
        batch = torch.stack([F.resize(chw, [resolution, resolution], antialias=False)])
        batch = F.normalize(batch, wrapper.means, wrapper.stds)
        with torch.no_grad():
            predictions = net(batch)
            sizes_hw = torch.tensor([image.shape[:2]])
            result = wrapper.model.postprocess(predictions, target_sizes=sizes_hw, score_threshold=None)[0]
            # the query each selection came from (PostProcess does not return it)
            prob = predictions["pred_logits"].sigmoid().view(1, -1)
            order = torch.argsort(prob, dim=1, descending=True, stable=True)[0, : len(result["scores"])]
            result["queries"] = order // predictions["pred_logits"].shape[2]
    finally:
        torch.set_default_dtype(previous)
    return result, float(batch.double().sum())


def as_arrays(result: dict, kept: int) -> dict:
    return {"boxes": result["boxes"][:kept].double().numpy(), "scores": result["scores"][:kept].double().numpy(),
            "labels": result["labels"][:kept].numpy(), "masks": result["masks"][:kept, 0].numpy()}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 1.0)


def spread(reference: dict, candidate: dict) -> dict:
    """Greedy same-class IoU >= 0.5 matching in reference score order; worst differences."""
    iou = box_iou(reference["boxes"], candidate["boxes"])
    iou[reference["labels"][:, None] != candidate["labels"][None, :]] = -1
    taken = np.zeros(len(candidate["boxes"]), bool)
    box_diff, score_diff, mask_iou = [], [], []
    for i in np.argsort(-reference["scores"], kind="stable"):
        row = np.where(taken, -1, iou[i])
        j = int(np.argmax(row))
        if row[j] < 0.5:
            continue
        taken[j] = True
        box_diff.append(np.abs(reference["boxes"][i] - candidate["boxes"][j]).max())
        score_diff.append(abs(reference["scores"][i] - candidate["scores"][j]))
        a, b = reference["masks"][i], candidate["masks"][j]
        union = np.logical_or(a, b).sum()
        mask_iou.append(np.logical_and(a, b).sum() / union if union else 1.0)
    return {"reference_count": len(reference["boxes"]), "matched": len(box_diff),
            "max_box_diff": float(max(box_diff, default=0.0)), "max_score_diff": float(max(score_diff, default=0.0)),
            "min_mask_iou": float(min(mask_iou, default=1.0))}


def check_against_predict(wrapper, image: np.ndarray, single: dict) -> None:
    """The float32 steps above are predict's: same boxes, scores and labels, bit for bit."""
    detections = wrapper.predict(image, threshold=0.0, include_source_image=False)
    kept = single["scores"] > 0.0
    assert np.array_equal(detections.xyxy, single["boxes"][kept].float().numpy()), "boxes differ from predict()"
    assert np.array_equal(detections.confidence, single["scores"][kept].float().numpy()), "scores differ"
    assert np.array_equal(detections.class_id, single["labels"][kept].numpy()), "labels differ"
    assert np.array_equal(detections.mask, single["masks"][kept, 0].numpy()), "masks differ"


def outputs_are_informative(arrays: dict) -> dict:
    masks = arrays["masks"]
    areas = masks.reshape(len(masks), -1).sum(1)
    stats = {"distinct_scores": int(len(np.unique(arrays["scores"]))),
             "distinct_labels": int(len(np.unique(arrays["labels"]))),
             "score_range": [float(arrays["scores"].min()), float(arrays["scores"].max())],
             "masks_with_pixels": int((areas > 0).sum()), "median_mask_area": float(np.median(areas)),
             "box_area_median": float(np.median((arrays["boxes"][:, 2] - arrays["boxes"][:, 0])
                                                * (arrays["boxes"][:, 3] - arrays["boxes"][:, 1])))}
    assert stats["distinct_scores"] > len(masks) // 2 and stats["masks_with_pixels"] > len(masks) // 2, stats
    return stats


def make(size, seed: int, check_predict: bool) -> dict:
    wrapper, net, weights = build(size, seed)
    net_double, net_single = net.double(), copy.deepcopy(net).float()
    fixture = {"size": size.alias, "rfdetr_class": size.rfdetr_class, "seed": seed, "recipe": random_weights.RECIPE,
               "weights_fingerprint": random_weights.fingerprint(weights), "kept": KEPT,
               "num_select": wrapper.model.postprocess.num_select, "resolution": wrapper.model.resolution,
               "parameters": sum(p.numel() for p in net.parameters()),
               "state_dict_shapes": {k: list(v.shape) for k, v in net.state_dict().items()},
               "means": list(wrapper.means), "stds": list(wrapper.stds),
               "environment": {"rfdetr": importlib.metadata.version("rfdetr"), "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(),
                               "threads": torch.get_num_threads()},
               "runs": {}}
    for frame, path in FRAMES.items():
        image = decode(path)
        double, input_sum = run(wrapper, net_double, image, torch.float64)
        single, _ = run(wrapper, net_single, image, torch.float32)
        if check_predict and frame == "coco_184324":
            wrapper.model.model = net_single
            check_against_predict(wrapper, image, single)
            wrapper.model.model = net_double
        ref = as_arrays(double, KEPT)
        rles = mask_utils.encode(np.asfortranarray(ref["masks"][:KEPT_MASKS].transpose(1, 2, 0).astype(np.uint8)))
        fixture["runs"][frame] = {
            "file": str(path.relative_to(REPO)), "pixels_sha256": hashlib.sha256(image.tobytes()).hexdigest(),
            "image_hw": list(image.shape[:2]), "input_sum": input_sum,
            "boxes": ref["boxes"].tolist(), "scores": ref["scores"].tolist(), "labels": ref["labels"].tolist(),
            "queries": double["queries"][:KEPT].tolist(),
            "masks_rle": [{"size": r["size"], "counts": r["counts"].decode()} for r in rles],
            "mask_areas": ref["masks"].reshape(len(ref["masks"]), -1).sum(1).tolist(),
            "stats": outputs_are_informative(ref),
            "float32_spread": spread(ref, as_arrays(single, KEPT)),
        }
    return fixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=[s.alias for s in sizes.SIZES])
    parser.add_argument("--check-predict", action="store_true", help="also compare the float32 steps with predict()")
    args = parser.parse_args()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for alias in args.sizes:
        size = sizes.get_size(alias)
        seed = [s.alias for s in sizes.SIZES].index(size.alias) + 1
        fixture = make(size, seed, args.check_predict)
        out = FIXTURES / f"{size.alias}.json.gz"
        with gzip.open(out, "wt") as f:
            json.dump(fixture, f)
        summary = {frame: (run["stats"], run["float32_spread"]) for frame, run in fixture["runs"].items()}
        print(f"{size.alias}: {out.stat().st_size / 1024:.0f} KiB {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
