"""Time pycocotools and faster-coco-eval on the same results, and check they agree.

The results imitate a detector's output on the embedded 80-image COCO set: 100 detections per
image (as the zoo models keep at most 100), made from the ground truth by shifting boxes,
eroding or dilating masks, changing classes and dropping instances, with random scores.

    .venv/bin/python tools/eval_backends.py [--repeats 3] [--per-image 100]

Prints, per backend, the best-of-N wall time of one full box + mask scoring
(``maskbench.evaluation.score_results``) and the largest difference between the backends.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time

import cv2
import numpy as np
from pycocotools.coco import COCO

from maskbench.evaluation import embedded_coco, score_results
from maskbench.evaluation.coco_eval import STAT_NAMES, available_backends, load_annotations
from maskbench.pipeline.coco_results import mask_to_rle


def detector_like_results(dataset: dict, ground_truth: COCO, per_image: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    category_ids = [cat["id"] for cat in dataset["categories"]]
    results = []
    for image in dataset["images"]:
        anns = [ann for ann in ground_truth.imgToAnns[image["id"]] if not ann["iscrowd"]]
        masks = [ground_truth.annToMask(ann) for ann in anns]
        for index in range(per_image):
            if not anns:
                break
            ann, mask = anns[index % len(anns)], masks[index % len(anns)]
            if index < len(anns) and rng.random() < 0.15:
                continue  # a missed instance
            x, y, w, h = ann["bbox"]
            jitter = 0.05 if index < len(anns) else 0.5  # the first copy is close, the others are not
            dx, dy = rng.normal(0, jitter) * w, rng.normal(0, jitter) * h
            x, y = x + dx, y + dy
            shift = np.float32([[1, 0, round(dx)], [0, 1, round(dy)]])  # the mask moves with its box
            mask = cv2.warpAffine(mask, shift, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST)
            kernel = np.ones((int(rng.integers(1, 6)),) * 2, np.uint8)
            mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
            category = ann["category_id"] if rng.random() > 0.1 else int(rng.choice(category_ids))
            results.append({"image_id": image["id"], "category_id": category, "score": float(rng.random()),
                            "bbox": [float(x), float(y), float(w), float(h)],
                            "segmentation": mask_to_rle(mask.astype(bool))})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-image", type=int, default=100)
    args = parser.parse_args()
    annotations, _ = embedded_coco()
    dataset = load_annotations(annotations)
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(annotations))
    results = detector_like_results(dataset, ground_truth, args.per_image)
    print(f"{len(dataset['images'])} images, {len(results)} detections; {platform.processor() or platform.machine()}, "
          f"best of {args.repeats}")
    scored = {}
    for backend in available_backends():
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            scored[backend] = score_results(results, dataset, backend=backend)
            times.append(time.perf_counter() - started)
        metrics = scored[backend]
        print(f"{backend:17s} {min(times):6.2f} s   box AP {metrics.box.stats['AP']:.4f}  "
              f"mask AP {metrics.mask.stats['AP']:.4f}")
    if len(scored) == 2:
        first, second = scored.values()
        largest = max(abs(getattr(first, key).stats[name] - getattr(second, key).stats[name])
                      for key in ("box", "mask") for name in STAT_NAMES)
        per_class = max(abs((getattr(first, key).per_class[name] or 0) - (getattr(second, key).per_class[name] or 0))
                        for key in ("box", "mask") for name in getattr(first, key).per_class)
        print(f"largest difference between backends: {largest:.1e} (summary), {per_class:.1e} (per class)")


if __name__ == "__main__":
    main()
