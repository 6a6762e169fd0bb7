"""The result of one image, in original-image pixels: what predict writes and evaluate reads."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .windowed_masks import WindowedMasks


class Detections:
    """Instances found in one image, sorted by descending score.

    ``labels`` are contiguous class indices 0..79 (MMDetection's order); convert to COCO's
    sparse category ids only when writing COCO files. The masks are kept as each instance's
    window (``windows``, what post-processing computes); ``masks`` is the (N, H, W) bool array of
    the whole image, built on first use (144 MB for 100 instances at 1600x900).
    """

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                 masks: np.ndarray | WindowedMasks):
        self.boxes = boxes  # (N, 4) float32, x1 y1 x2 y2 in original-image pixels
        self.scores = scores  # (N,) float32
        self.labels = labels  # (N,) int64
        if isinstance(masks, WindowedMasks):
            self.windows = masks
        else:
            self.windows = WindowedMasks.of_dense(masks)
            self.__dict__["masks"] = masks  # the array given: no copy

    @cached_property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool, original image size."""
        return self.windows.dense()

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __repr__(self) -> str:
        return f"Detections({len(self)} instances, masks {self.windows.shape})"

    def above(self, score_threshold: float) -> Detections:
        """The subset scoring at least ``score_threshold`` (for drawing; files keep all)."""
        keep = self.scores >= score_threshold
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep], self.windows.take(keep))
