"""The result of one image, in original-image pixels: what predict writes and evaluate reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Instances found in one image, sorted by descending score.

    ``labels`` are contiguous class indices 0..79 (MMDetection's order); convert to COCO's
    sparse category ids only when writing COCO files.
    """

    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2 in original-image pixels
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64
    masks: np.ndarray  # (N, H, W) bool, original image size

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def above(self, score_threshold: float) -> Detections:
        """The subset scoring at least ``score_threshold`` (for drawing; files keep all)."""
        keep = self.scores >= score_threshold
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep], self.masks[keep])

