"""Ground truth turned into predictions: perfect, or damaged the ways a detector errs."""

from __future__ import annotations

import copy
import hashlib

import cv2
import numpy as np

from maskbench.data.coco_classes import category_id_to_label
from maskbench.data.images import load_image
from maskbench.pipeline.coco_results import mask_to_rle
from maskbench.pipeline.detections import Detections
from maskbench.utils.errors import ImageError


def gt_as_predictions(dataset: dict, masks: dict[int, np.ndarray]) -> list[dict]:
    """Every non-crowd ground-truth instance as a score-1 prediction (box and RLE mask)."""
    return [
        {"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": list(ann["bbox"]),
         "score": 1.0, "segmentation": mask_to_rle(masks[ann["id"]])}
        for ann in dataset["annotations"] if not ann["iscrowd"]
    ]


def perturbed_predictions(dataset: dict, masks: dict[int, np.ndarray], seed: int = 0) -> list[dict]:
    """Ground truth damaged the ways a detector errs, with varied scores so ranking matters.

    Per instance, at random: dropped (missed), class changed (wrong label), box shifted by a
    fraction of its size, mask eroded (thinner) or dilated; plus false positives copied onto
    other images. Every score differs, so AP depends on the order of the errors.
    """
    rng = np.random.default_rng(seed)
    category_ids = [cat["id"] for cat in dataset["categories"]]
    image_ids = [image["id"] for image in dataset["images"]]
    entries = []
    for ann in dataset["annotations"]:
        if ann["iscrowd"]:
            continue
        roll = rng.random()
        if roll < 0.15:
            continue  # missed instance
        entry = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": float(rng.uniform(0.05, 1))}
        x, y, w, h = ann["bbox"]
        mask = masks[ann["id"]]
        if roll < 0.25:
            entry["category_id"] = int(rng.choice([c for c in category_ids if c != ann["category_id"]]))
        if rng.random() < 0.5:
            x, y = x + rng.uniform(-0.3, 0.3) * w, y + rng.uniform(-0.3, 0.3) * h
        kernel = np.ones((int(rng.integers(2, 6)),) * 2, np.uint8)
        if rng.random() < 0.5:
            mask = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
        elif rng.random() < 0.5:
            mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        entry["bbox"] = [round(float(v), 2) for v in (x, y, w, h)]
        entry["segmentation"] = mask_to_rle(mask)
        entries.append(entry)
        if rng.random() < 0.1:  # a false positive of the same shape on another image (size permitting)
            other = int(rng.choice(image_ids))
            size = next(im for im in dataset["images"] if im["id"] == other)
            if (size["height"], size["width"]) == mask.shape:
                entries.append({**copy.deepcopy(entry), "image_id": other, "score": float(rng.uniform(0, 0.5))})
    return entries


class GroundTruthPredictor:
    """Returns each image's ground truth as detections, recognising images by their pixels;
    raises on the images listed in ``fail_on``, as a model may on a strange input."""

    def __init__(self, dataset, masks, images_dir, fail_on=()):
        self.by_pixels = {}
        for image in dataset["images"]:
            if image["id"] in fail_on:
                continue
            try:
                self.by_pixels[_digest(load_image(images_dir / image["file_name"]))] = image["id"]
            except ImageError:
                continue  # evaluate_predictor must report it; the predictor never sees it
        self.annotations = dataset["annotations"]
        self.masks = masks

    def __call__(self, pixels):
        if _digest(pixels) not in self.by_pixels:
            raise RuntimeError("unsupported input")
        image_id = self.by_pixels[_digest(pixels)]
        anns = [ann for ann in self.annotations if ann["image_id"] == image_id and not ann["iscrowd"]]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (ann["bbox"] for ann in anns)], np.float32)
        return Detections(boxes.reshape(-1, 4), np.ones(len(anns), np.float32),
                          np.array([category_id_to_label(ann["category_id"]) for ann in anns], np.int64),
                          np.array([self.masks[ann["id"]] for ann in anns]).reshape(-1, *pixels.shape[:2]))


def _digest(pixels: np.ndarray) -> str:
    return hashlib.sha1(pixels.tobytes()).hexdigest()
