"""Build a zoo model with its weights: official download, a local checkpoint, or random.

One string names a model (``get_spec``), one string names its weights:
- ``"official"``: the zoo's checkpoint, downloaded once into the cache and hash-checked;
- ``"random"``: deterministic random weights calibrated on real frames (see
  :mod:`maskbench.models.random_init`), for benchmarking where no weights can be had;
- a path: a local MMDetection ``.pth`` (loaded without executing pickled code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from ..zoo import ModelSpec, get_spec, locate
from ..zoo.weights_kind import WeightsKind
from .detector import Detector, FamilyModel
from .random_init import randomize_

RANDOM = WeightsKind.RANDOM  # the user's choices besides a checkpoint path (a str: compares with one)
OFFICIAL = WeightsKind.OFFICIAL


@dataclass(frozen=True)
class LoadedModel:
    model: Detector
    spec: ModelSpec
    weights: str  # "official (<file>)", "checkpoint <path>" or "random (seed N, calibrated)"


def family_model(spec: ModelSpec) -> FamilyModel:
    """The torch side of the spec's family (its registry entry's ``model``)."""
    return locate(spec.family.model)


def build_model(spec: ModelSpec, fixed_count: bool = False) -> Detector:
    """The architecture only, with PyTorch's default initialisation. ``fixed_count``: exactly
    ``max_per_img`` detections per image (for benchmarks on random weights)."""
    return family_model(spec).build(spec, fixed_count)


def calibrate_random_(model: Detector, spec: ModelSpec, images: torch.Tensor, shapes: list[tuple[int, int]]) -> None:
    """The family's calibration of random weights (e.g. :mod:`.random_init`, :mod:`.rtmdet_random`)."""
    family_model(spec).calibrate_(model, images, shapes)


def create_model(
    name: str,
    weights: str = RANDOM,
    *,
    calibration_images: torch.Tensor | None = None,
    calibration_shapes: list[tuple[int, int]] | None = None,
    seed: int = 0,
    fixed_count: bool | None = None,
    progress: bool = True,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """``fixed_count`` (default: on for random weights) keeps exactly 100 detections per image.

    ``dtype`` float64 builds, calibrates and runs the model in double: random weights are then
    the same on every CPU (calibration runs the network, whose float32 rounding follows the
    CPU's kernels), which the parity check relies on (docs/parity.md)."""
    spec = get_spec(name)
    fixed = (weights == RANDOM) if fixed_count is None else fixed_count
    model = build_model(spec, fixed).to(dtype)
    if weights == RANDOM:
        (family_model(spec).randomize_ or randomize_)(model, seed)
        if calibration_images is None:
            calibration_images, calibration_shapes = default_calibration_batch(spec)
        shapes = cast("list[tuple[int, int]]", calibration_shapes)  # given with the images
        calibrate_random_(model, spec, calibration_images.to(dtype), shapes)
        recipe = family_model(spec).random_recipe
        return LoadedModel(model, spec, f"random (seed {seed}, {recipe}, untrained: detections are meaningless)")
    from .. import weights as weights_io

    if weights == OFFICIAL:
        path = weights_io.download_checkpoint(spec.weights.url, spec.weights.sha256_prefix, progress=progress,
                                              md5=spec.weights.md5)
        described = f"official ({path.name})"
    else:
        path = Path(weights)
        described = f"checkpoint {path}"
    load_checkpoint_into(model, path, spec)
    return LoadedModel(model, spec, described)


def load_checkpoint_into(model: Detector, path: Path, spec: ModelSpec) -> None:
    from .. import weights as weights_io

    state = (family_model(spec).read_checkpoint or weights_io.load_state_dict)(path)
    model_name = spec.name
    expected = model.state_dict()
    weights_io.check_state_dict(expected, state, model_name, path)
    # Older checkpoints may lack ``num_batches_tracked`` (unused at inference).
    for key, value in expected.items():
        state.setdefault(key, value)
    model.load_state_dict(state, strict=True)


def calibration_batch(spec: ModelSpec, images, input_size: tuple[int, int] | None = None,
                      dtype: torch.dtype = torch.float32,
                      keep_ratio: bool = False) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """RGB frames as one calibration batch: stretched to one input size (default: the model's,
    e.g. 1344x800), or, with ``keep_ratio`` where the model pads every frame to one size
    (RTMDet-Ins' 640x640), as that mode preprocesses them: calibrated on what it will see."""
    from ..pipeline.preprocess import ResizeMode
    from .inputs import preprocess

    mode = ResizeMode.KEEP_RATIO if keep_ratio and spec.input_format.pad_to_scale else ResizeMode.STRETCH
    batch = [preprocess(image, mode, input_size if mode is ResizeMode.STRETCH else None, spec.input_format, dtype)
             for image in images]
    return torch.cat([tensor for tensor, _ in batch]), [meta.img_shape for _, meta in batch]


def default_calibration_batch(spec: ModelSpec) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The embedded front-camera frame at the model's default stretch size (Mask R-CNN: the
    study's 1344x800): the frame random weights are calibrated on when the caller has none."""
    from ..data.images import load_image
    from ..data.sources import embedded_nuscenes, find_images

    ref = find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0]
    return calibration_batch(spec, [load_image(ref.path)])
