"""Does a runtime keep the eager model's answers? Run both on the same frames and compare.

For each frame: eager PyTorch (the reference) and the runtime get the same preprocessed tensor;
both outputs go through the same ``postprocess.to_detections`` and are compared with
``compare.compare_detections`` (detections matched by class and box IoU; worst box and score
differences; mask IoU per detection and area-weighted).

Random weights are calibrated on the checked frames themselves (all of them, as one batch).
Calibrated on one frame only, random weights saturate on the others (measured: RPN objectness
logits up to 64 on the embedded back-camera frames, hundreds of scores exactly 1.0): tied
scores are then ordered by each runtime's sort and NMS, which is implementation-defined, and
the comparison measures tie-breaking instead of the conversion.

Reduced precision (fp16, bf16, int8) is checked against the same fp32 eager reference with its
own, looser :class:`Tolerance`: it is expected to move boxes and masks a little and to swap a few
detections at the margins, but a model that loses more than that (MMDeploy users saw Swin-T
lose ~5 AP in TensorRT fp16) is reported plainly as broken by that precision. Judge it with
official weights: calibrated random weights amplify rounding about 100x (measured on r50 at
320x192: 1e-3 relative noise on the input moves the FPN features by 10-20%, rounding the
weights to fp16 alone by 4-8%; bf16 autocast matched 34 of 100 detections), so any reduced
precision "breaks" a random-weight model. So every row also compares the FPN outputs (P2..P6,
through the runtime's feature tap, :mod:`.features`): lowest cosine and highest relative error
over the levels, which judge a conversion or a precision without trained weights (fp32 ONNX
Runtime / OpenVINO: relative error ~1e-4; int8 on random r50: cosine ~0.66, see
docs/precision.md).

The parts: the tolerances per precision (:mod:`.tolerances`), a row and its verdict
(:mod:`.check_row`), the tables (:mod:`.tables`) and the JSON file (:mod:`.results_file`); the
frames come from :mod:`maskbench.data.frames`, calibrated random weights from
:func:`maskbench.export.calibration.calibrated_random_model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..data.frames import Frame, load_frames
from ..export.calibration import calibrated_random_model
from ..models.detector import to_detections
from ..models.factory import RANDOM, LoadedModel, create_model
from ..models.inputs import preprocess
from ..pipeline.preprocess import ResizeMode
from ..runtimes.base import FeatureTapUnavailable, Runtime
from ..runtimes.registry import get_runtime, require_runtime
from ..utils.timing import best_of
from ..zoo import get_spec
from .check_row import CheckRow
from .compare import agreement_of, pair_differences
from .features import compare_features, eager_outputs, feature_tap, reference_features
from .tolerances import TOLERANCES, close_pairs


def check_conversion(
    loaded: LoadedModel,
    runtimes: Runtime | Sequence[Runtime],
    frames: Sequence[Frame],
    mode: ResizeMode | str = ResizeMode.STRETCH,
    input_size: tuple[int, int] | None = None,
    repeats: int = 1,
    warmup: bool = True,
    features: bool = True,
) -> list[CheckRow]:
    """One row per (frame, runtime). Latencies are the best of ``repeats`` runs (network only:
    no preprocessing or mask pasting), after exporting/compiling and, with ``warmup``, one
    untimed run. With ``features``, the FPN outputs are compared through each runtime's feature
    tap (an extra compilation for graph runtimes, not timed); without, those columns are NaN."""
    runtimes = [runtimes] if isinstance(runtimes, Runtime) else list(runtimes)
    taps = {id(runtime): _tap_or_none(runtime) if features else None for runtime in runtimes}
    mode = ResizeMode(mode)
    spec = loaded.spec
    threshold = loaded.model.detection_config.mask_thr_binary
    rows = []
    for frame in frames:
        tensor, meta = preprocess(frame.image, mode, input_size, spec.input_format)
        eager_features = None
        if warmup:  # the untimed call also gives the FPN outputs
            eager_features = eager_outputs(loaded, tensor, meta.img_shape)[1]
        elif any(taps.values()):
            eager_features = reference_features(loaded, tensor)
        eager_s, raw = best_of(lambda: loaded.model(tensor, [meta.img_shape])[0], repeats)  # noqa: B023 (called at once)
        reference = to_detections(raw, meta, spec.family, threshold)
        for runtime in runtimes:
            runtime.prepare(tensor, meta.img_shape)
            if warmup:
                runtime(tensor, meta.img_shape)
            runtime_s, out = best_of(lambda: runtime(tensor, meta.img_shape), repeats)  # noqa: B023 (called at once)
            candidate = to_detections(out, meta, spec.family, threshold)
            differences = pair_differences(reference, candidate)
            agreement = agreement_of(differences, len(reference), len(candidate))
            precision = getattr(runtime, "precision", "fp32")
            tap = taps[id(runtime)]
            # a tap means features were asked for: eager_features were computed above
            levels = compare_features(cast("list[np.ndarray]", eager_features), tap(tensor, meta.img_shape)) \
                if tap else []
            feature_columns: dict[str, Any] = \
                {"feature_cosine": min(c for c, _ in levels), "feature_rel_error": max(e for _, e in levels)} \
                if levels else {}
            rows.append(CheckRow(
                model=spec.alias, runtime=runtime.name, precision=precision, image=frame.name, camera=frame.camera,
                mode=mode.value, input_hw=(int(tensor.shape[-2]), int(tensor.shape[-1])), eager_ms=eager_s * 1000.0,
                runtime_ms=runtime_s * 1000.0, close_pairs=close_pairs(differences, TOLERANCES[precision]),
                **agreement.as_dict(), **feature_columns,
            ))
    return rows


def _tap_or_none(runtime: Runtime) -> Callable | None:
    try:
        return feature_tap(runtime)
    except FeatureTapUnavailable:
        return None


def run_check(
    model: str,
    runtime_names: Sequence[str],
    weights: str = RANDOM,
    images: Path | str | None = None,
    cameras: Sequence[str] | None = None,
    mode: ResizeMode | str = ResizeMode.STRETCH,
    input_size: tuple[int, int] | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
    repeats: int = 1,
    seed: int = 0,
    precision: str = "fp32",
    calibration_images: Sequence[np.ndarray] | None = None,
) -> list[CheckRow]:
    """``maskbench check-conversion``: load the model, build the runtimes (all in ``precision``;
    int8 calibrated on ``calibration_images``, default the embedded frames), check every frame
    against eager fp32."""
    get_spec(model)  # an unknown model, runtime or precision: refused in one line before the model is built
    for name in runtime_names:
        require_runtime(name, precision)
    mode = ResizeMode(mode)
    frames = load_frames(images, cameras)
    if weights == RANDOM:
        loaded = calibrated_random_model(model, frames, mode, input_size, seed)
    else:
        loaded = create_model(model, weights)
    runtimes = [get_runtime(name, loaded, mode=mode, threads=threads, cache_dir=cache_dir, precision=precision,
                            calibration_images=calibration_images) for name in runtime_names]
    return check_conversion(loaded, runtimes, frames, mode, input_size, repeats)

