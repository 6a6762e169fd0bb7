"""When a runtime "agrees" with fp32 eager PyTorch on a frame, per precision: the tolerances of
the conversion check (:mod:`.conversion_check`)."""

from __future__ import annotations

from dataclasses import dataclass

from .compare import PairDifferences


@dataclass(frozen=True)
class Tolerance:
    """When a runtime "agrees" with eager on a frame.

    A matched pair is "close" when its boxes are within ``close_box_px`` pixels of the original
    image and its masks at ``close_mask_iou`` or more. A reference detection that is unmatched
    or not close is "changed". The frame agrees when at most ``allowed_changes`` (or, if more,
    ``allowed_changed_fraction`` of the reference's detections) are changed, masks agree to
    ``min_mean_mask_iou`` on average over matched pairs (the area-weighted IoU is dragged down
    by one flipped large mask), and, if ``all_matched``, every detection on both sides is
    matched.
    """

    close_box_px: float
    close_mask_iou: float
    allowed_changes: int
    allowed_changed_fraction: float
    min_mean_mask_iou: float
    all_matched: bool

    def allowed(self, reference_count: int) -> int:
        return max(self.allowed_changes, int(self.allowed_changed_fraction * reference_count))

    def describe(self) -> str:
        return (f"close = boxes within {self.close_box_px:g} px and mask IoU >= {self.close_mask_iou:g}; at most "
                f"{self.allowed_changes} or {self.allowed_changed_fraction:.0%} of detections changed; mean mask IoU "
                f">= {self.min_mean_mask_iou:g}")


# fp32: every detection matched, at most 2 not close. Why 2: a box at the NMS threshold (or a
# proposal at the 1000th place) goes either way with the last bit of a convolution, and on
# chaotic random weights one such proposal can change a detection (measured: r50 CAM_BACK on
# OpenVINO, 1 pair 1.8 px apart; s101 CAM_FRONT on OpenVINO, 1 pair replaced). A conversion
# bug changes far more than two detections.
FP32_TOLERANCE = Tolerance(close_box_px=0.5, close_mask_iou=0.99, allowed_changes=2, allowed_changed_fraction=0.0,
                           min_mean_mask_iou=0.99, all_matched=True)
# fp16/bf16: 11 (fp16) or 8 (bf16) mantissa bits instead of 24 move every box and mask a little
# and swap detections whose scores sit close together; up to 10% of the detections may change
# (unmatched, or boxes more than 2 px apart, or masks below IoU 0.9) and masks must still agree
# to 0.95 on average. Beyond that the precision changes what the model finds.
REDUCED_TOLERANCE = Tolerance(close_box_px=2.0, close_mask_iou=0.9, allowed_changes=2, allowed_changed_fraction=0.1,
                              min_mean_mask_iou=0.95, all_matched=False)
# int8: activations per tensor on 256 levels over the range calibration measured, so small
# activations next to a large one keep fewer significant bits than bf16 gives them; weights per
# channel. Allowed: up to 15% of the detections changed (unmatched, boxes more than 3 px apart,
# masks below IoU 0.85) and masks at 0.93 on average. A judgement, one step looser than bf16,
# not a measurement: no official weights could be checked where this was written (see
# docs/precision.md), and random weights are no guide (below).
INT8_TOLERANCE = Tolerance(close_box_px=3.0, close_mask_iou=0.85, allowed_changes=2, allowed_changed_fraction=0.15,
                           min_mean_mask_iou=0.93, all_matched=False)
TOLERANCES = {"fp32": FP32_TOLERANCE, "fp16": REDUCED_TOLERANCE, "bf16": REDUCED_TOLERANCE, "int8": INT8_TOLERANCE}


def close_pairs(differences: PairDifferences, tolerance: Tolerance = FP32_TOLERANCE) -> int:
    """Matched pairs within ``tolerance``'s box distance and mask IoU."""
    close = (differences.box_diff <= tolerance.close_box_px) & (differences.mask_iou >= tolerance.close_mask_iou)
    return int(close.sum())
