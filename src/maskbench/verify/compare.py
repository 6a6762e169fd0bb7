"""How closely two sets of detections of the same image agree.

Used to prove parity with MMDetection and, later, that a converted runtime keeps the answers.
Detections are matched greedily in the reference's score order: same class, best box IoU
(at least ``min_box_iou``). Random-weight networks are chaotic (tiny numeric differences swap
detections at the top-100 cut), so the result reports how many matched and, over the matched
pairs, the worst box and score differences and the mask IoU both per detection and weighted by
area (a few flipped pixels on a tiny mask should not dominate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..pipeline.detections import Detections
from ..pipeline.windowed_masks import WindowedMasks

DEGENERATE_SAME_PX = 1e-6


@dataclass(frozen=True)
class Agreement:
    reference_count: int
    candidate_count: int
    matched: int
    max_box_diff: float  # pixels, over matched pairs
    max_score_diff: float
    min_mask_iou: float
    mean_mask_iou: float
    area_weighted_mask_iou: float  # sum of intersections / sum of unions

    def as_dict(self) -> dict:
        return asdict(self)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of corner boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    # Degenerate (zero-area) boxes, e.g. clipped at the image border: equal ones are the same box
    # (equal to DEGENERATE_SAME_PX: float64 runs on two CPUs differ in the last bits).
    identical = np.all(np.abs(a[:, None, :] - b[None, :, :]) <= DEGENERATE_SAME_PX, axis=2)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), identical.astype(np.float64))


def match_detections(reference: Detections, candidate: Detections, min_box_iou: float = 0.5) -> list[tuple[int, int]]:
    """Pairs (reference index, candidate index)."""
    if len(reference) == 0 or len(candidate) == 0:
        return []
    iou = box_iou(reference.boxes.astype(np.float64), candidate.boxes.astype(np.float64))
    iou[reference.labels[:, None] != candidate.labels[None, :]] = -1
    pairs, taken = [], np.zeros(len(candidate), dtype=bool)
    for i in np.argsort(-reference.scores, kind="stable"):
        row = np.where(taken, -1, iou[i])
        j = int(np.argmax(row))
        if row[j] >= min_box_iou:
            taken[j] = True
            pairs.append((int(i), j))
    return pairs


@dataclass(frozen=True)
class PairDifferences:
    """Per matched pair (as :func:`match_detections` pairs them): how far apart the two are."""

    pairs: list[tuple[int, int]]  # (reference index, candidate index)
    box_diff: np.ndarray  # (P,) largest coordinate difference, pixels
    score_diff: np.ndarray  # (P,)
    mask_intersection: np.ndarray  # (P,) pixels
    mask_union: np.ndarray  # (P,) pixels

    @property
    def mask_iou(self) -> np.ndarray:
        """(P,) mask IoU per pair; two empty masks agree (1.0)."""
        return np.where(self.mask_union > 0, self.mask_intersection / np.maximum(self.mask_union, 1), 1.0)


def pair_differences(reference: Detections, candidate: Detections, min_box_iou: float = 0.5) -> PairDifferences:
    pairs = match_detections(reference, candidate, min_box_iou)
    ref_idx = np.array([i for i, _ in pairs], dtype=np.int64)
    cand_idx = np.array([j for _, j in pairs], dtype=np.int64)
    box_diff = np.abs(reference.boxes[ref_idx].astype(np.float64) - candidate.boxes[cand_idx]).reshape(-1, 4).max(
        axis=1, initial=0.0)
    score_diff = np.abs(reference.scores[ref_idx].astype(np.float64) - candidate.scores[cand_idx])
    overlaps = [overlap(reference.windows, i, candidate.windows, j) for i, j in pairs]
    inter = np.array([o[0] for o in overlaps], dtype=np.float64)
    union = np.array([o[1] for o in overlaps], dtype=np.float64)
    return PairDifferences(pairs, box_diff, score_diff, inter, union)


def overlap(first: WindowedMasks, i: int, second: WindowedMasks, j: int) -> tuple[int, int]:
    """(intersection, union) in pixels of ``first``'s mask ``i`` and ``second``'s mask ``j``,
    from their windows (no whole-image arrays)."""
    if first.shape[1:] != second.shape[1:]:
        raise ValueError(f"masks of a {first.shape[1:]} and a {second.shape[1:]} image cannot be compared")
    a, b = first.window(i), second.window(j)
    area_a, area_b = int(np.count_nonzero(a[2])), int(np.count_nonzero(b[2]))
    rows = slice(max(a[0].start, b[0].start), min(a[0].stop, b[0].stop))
    cols = slice(max(a[1].start, b[1].start), min(a[1].stop, b[1].stop))
    inter = 0
    if rows.stop > rows.start and cols.stop > cols.start:
        inter = int(np.count_nonzero(_part(a, rows, cols) & _part(b, rows, cols)))
    return inter, area_a + area_b - inter


def _part(window: tuple[slice, slice, np.ndarray], rows: slice, cols: slice) -> np.ndarray:
    """The bool pixels of ``window`` (rows, columns, crop) at image ``rows`` x ``cols`` (inside it)."""
    crop_rows, crop_cols, crop = window
    return crop[rows.start - crop_rows.start:rows.stop - crop_rows.start,
                cols.start - crop_cols.start:cols.stop - crop_cols.start].astype(bool, copy=False)


def agreement_of(differences: PairDifferences, reference_count: int, candidate_count: int) -> Agreement:
    """The summary of :func:`pair_differences` (worst pair, mean and area-weighted mask IoU)."""
    d = differences
    if not d.pairs:
        return Agreement(reference_count, candidate_count, 0, float("nan"), float("nan"), 0.0, 0.0, 0.0)
    iou = d.mask_iou
    weighted = float(d.mask_intersection.sum() / d.mask_union.sum()) if d.mask_union.sum() > 0 else 1.0
    return Agreement(reference_count, candidate_count, len(d.pairs), float(d.box_diff.max()), float(d.score_diff.max()),
                     float(iou.min()), float(iou.mean()), weighted)


def compare_detections(reference: Detections, candidate: Detections, min_box_iou: float = 0.5) -> Agreement:
    return agreement_of(pair_differences(reference, candidate, min_box_iou), len(reference), len(candidate))
