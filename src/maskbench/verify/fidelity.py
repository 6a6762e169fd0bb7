"""How close a runtime in its precision stays to fp32 eager PyTorch, on the same frames.

Two levels, both against ``loaded.model`` (fp32 eager) on the same preprocessed tensors:

- features: the five FPN outputs (:mod:`.features`), cosine similarity and relative error
  ``||runtime - eager|| / ||eager||`` per level; the summary is the worst over levels and frames
  (lowest cosine, highest error). Meaningful with any weights.
- detections: matched to eager's (class and box IoU >= 0.5, :mod:`maskbench.verify.compare`), mask IoU
  of every matched pair: mean, min and area-weighted (sum of intersections / sum of unions).
  With random weights this level means little for reduced precision: such a network is
  chaotic (bf16 features at cosine 0.98 already change most of the 100 detections), so the
  record says so (:data:`RANDOM_WEIGHTS_NOTE`) and the features are what to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.detector import to_detections
from ..models.factory import LoadedModel
from ..models.inputs import preprocess
from ..pipeline.preprocess import ResizeMode
from ..runtimes.base import Runtime
from ..zoo.weights_kind import are_random
from .compare import pair_differences
from .features import compare_features, eager_outputs, feature_tap

RANDOM_WEIGHTS_NOTE = ("random weights: detection-level agreement under reduced precision means something only with "
                       "official weights; judge random weights by the feature-level numbers (feature cosine, relative "
                       "error)")


@dataclass(frozen=True)
class FrameFidelity:
    """One frame: per FPN level (P2..P6) cosine and relative error; detections matched; the
    mask IoU of each matched pair and the sums of their intersections and unions (pixels)."""

    cosine: tuple[float, ...]
    rel_error: tuple[float, ...]
    reference_count: int
    candidate_count: int
    mask_iou: tuple[float, ...]
    mask_intersection: float
    mask_union: float

    @property
    def matched(self) -> int:
        return len(self.mask_iou)


@dataclass(frozen=True)
class Fidelity:
    runtime: str
    precision: str
    random_weights: bool
    frames: tuple[FrameFidelity, ...]
    levels: tuple[str, ...]  # the feature levels' names (the family entry's feature_levels)

    @property
    def cosine_per_level(self) -> dict[str, float]:
        """Lowest cosine of each level over the frames."""
        levels = self.levels
        return {level: min(f.cosine[i] for f in self.frames) for i, level in enumerate(levels)}

    @property
    def rel_error_per_level(self) -> dict[str, float]:
        """Highest relative error of each level over the frames."""
        levels = self.levels
        return {level: max(f.rel_error[i] for f in self.frames) for i, level in enumerate(levels)}

    @property
    def min_cosine(self) -> float:
        return min(self.cosine_per_level.values())

    @property
    def max_rel_error(self) -> float:
        return max(self.rel_error_per_level.values())

    @property
    def matched(self) -> float:
        """Detections matched per frame, mean over the frames."""
        return float(np.mean([f.matched for f in self.frames]))

    @property
    def reference_count(self) -> float:
        """Eager's detections per frame, mean over the frames."""
        return float(np.mean([f.reference_count for f in self.frames]))

    def _ious(self) -> np.ndarray:
        return np.array([iou for f in self.frames for iou in f.mask_iou], dtype=np.float64)

    @property
    def mean_mask_iou(self) -> float:
        """Over every matched pair of every frame; 0 when nothing matched."""
        ious = self._ious()
        return float(ious.mean()) if ious.size else 0.0

    @property
    def min_mask_iou(self) -> float:
        ious = self._ious()
        return float(ious.min()) if ious.size else 0.0

    @property
    def area_weighted_mask_iou(self) -> float:
        union = sum(f.mask_union for f in self.frames)
        if not any(f.matched for f in self.frames):
            return 0.0
        return float(sum(f.mask_intersection for f in self.frames) / union) if union > 0 else 1.0

    @property
    def note(self) -> str:
        """:data:`RANDOM_WEIGHTS_NOTE` for random weights, else empty."""
        return RANDOM_WEIGHTS_NOTE if self.random_weights else ""

    def summary(self) -> str:
        """One line, e.g. ``onnxruntime int8: FPN cosine >= 0.7383, rel. error <= 0.730; matched 8.0/100.0...``."""
        return (f"{self.runtime} {self.precision}: feature cosine >= {self.min_cosine:.4f}, rel. error <= "
                f"{self.max_rel_error:.3g}; matched {self.matched:.1f}/{self.reference_count:.1f} per frame, mask IoU "
                f"mean {self.mean_mask_iou:.3f}, area-weighted {self.area_weighted_mask_iou:.3f} "
                f"({len(self.frames)} frame(s))")

    def as_dict(self) -> dict:
        return {"runtime": self.runtime, "precision": self.precision, "random_weights": self.random_weights,
                "frames": len(self.frames), "min_cosine": self.min_cosine, "max_rel_error": self.max_rel_error,
                "cosine_per_level": self.cosine_per_level, "rel_error_per_level": self.rel_error_per_level,
                "matched": self.matched, "reference_count": self.reference_count,
                "mean_mask_iou": self.mean_mask_iou, "min_mask_iou": self.min_mask_iou,
                "area_weighted_mask_iou": self.area_weighted_mask_iou, "note": self.note}


def is_random(loaded: LoadedModel) -> bool:
    return are_random(loaded.weights)


def measure_fidelity(runtime: Runtime, loaded: LoadedModel, frames: Sequence[np.ndarray],
                     mode: ResizeMode | str = ResizeMode.STRETCH,
                     input_size: tuple[int, int] | None = None) -> Fidelity:
    """``runtime`` against fp32 eager (``loaded.model``) on ``frames`` (RGB uint8), each
    preprocessed once (``mode``, ``input_size`` as for the runtime) and fed to both. Raises
    :class:`~maskbench.runtimes.base.FeatureTapUnavailable` for a runtime without a feature tap (TensorRT)."""
    mode = ResizeMode(mode)
    spec = loaded.spec
    threshold = loaded.model.detection_config.mask_thr_binary
    tap = feature_tap(runtime)
    results = []
    for image in frames:
        tensor, meta = preprocess(image, mode, input_size, spec.input_format)
        reference_raw, reference_features = eager_outputs(loaded, tensor, meta.img_shape)
        runtime.prepare(tensor, meta.img_shape)
        candidate_raw = runtime(tensor, meta.img_shape)
        levels = compare_features(reference_features, tap(tensor, meta.img_shape))
        reference = to_detections(reference_raw, meta, spec.family, threshold)
        candidate = to_detections(candidate_raw, meta, spec.family, threshold)
        d = pair_differences(reference, candidate)
        results.append(FrameFidelity(
            cosine=tuple(c for c, _ in levels), rel_error=tuple(e for _, e in levels),
            reference_count=len(reference), candidate_count=len(candidate),
            mask_iou=tuple(float(v) for v in d.mask_iou), mask_intersection=float(d.mask_intersection.sum()),
            mask_union=float(d.mask_union.sum())))
    if not results:
        raise ValueError("measure_fidelity needs at least one frame")
    return Fidelity(runtime.name, getattr(runtime, "precision", "fp32"), is_random(loaded), tuple(results),
                    spec.family.feature_levels)


__all__ = ["Fidelity", "FrameFidelity", "RANDOM_WEIGHTS_NOTE", "measure_fidelity"]
