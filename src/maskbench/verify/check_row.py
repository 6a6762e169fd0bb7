"""One row of the conversion check: a runtime against eager on one frame, and its verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .tolerances import TOLERANCES, Tolerance


@dataclass
class CheckRow:
    model: str
    runtime: str
    precision: str
    image: str
    camera: str | None
    mode: str
    input_hw: tuple[int, int]  # the (padded) tensor the network saw
    reference_count: int
    candidate_count: int
    matched: int
    max_box_diff: float  # pixels of the original image, over matched pairs
    max_score_diff: float
    min_mask_iou: float
    mean_mask_iou: float
    area_weighted_mask_iou: float
    close_pairs: int  # matched pairs close by this precision's tolerance
    eager_ms: float
    runtime_ms: float
    # FPN outputs P2..P6 against eager fp32 (verify/features.py): lowest cosine and highest
    # relative error over the levels; NaN where the runtime has no feature tap (TensorRT).
    feature_cosine: float = float("nan")
    feature_rel_error: float = float("nan")

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.precision]

    @property
    def flips(self) -> int:
        """Matched pairs that are not close."""
        return self.matched - self.close_pairs

    @property
    def changed(self) -> int:
        """Reference detections not reproduced closely (unmatched, or matched but not close)."""
        return self.reference_count - self.close_pairs

    @property
    def agrees(self) -> bool:
        tol = self.tolerance
        all_matched = self.matched == self.reference_count == self.candidate_count
        return ((all_matched or not tol.all_matched) and self.changed <= tol.allowed(self.reference_count)
                and (self.matched == 0 or self.mean_mask_iou >= tol.min_mean_mask_iou))

    def verdict(self) -> str | None:
        """One plain line when this frame disagrees, else ``None``."""
        if self.agrees:
            return None
        where = f"{self.model} on {self.runtime}, frame {self.camera or self.image}"
        what = (f"changes {self.changed} of {self.reference_count} detections (matched {self.matched}, mean mask IoU "
                f"{self.mean_mask_iou:.3f})")
        if self.precision == "fp32":
            return f"{where}: the conversion {what}: it does not keep the eager model's answers"
        return (f"{where}: {self.precision} {what}: this precision breaks the model at these tolerances "
                f"({self.tolerance.describe()})")

    def as_dict(self) -> dict:
        values = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}
        return {**values, "input_hw": list(self.input_hw), "flips": self.flips, "changed": self.changed,
                "agrees": self.agrees}
