"""The model every actor runs: built once by the driver as a deployment bundle
(:func:`maskbench.export.bundle.build_bundle`) and shipped to the actors through Ray's object
store as the bundle's bytes, so no actor exports, quantizes or calibrates (random weights are
calibrated once, on the run's first readable frame, as ``predict`` does), every actor runs the
same network, and the model needs no shared storage. Actors are torch-free (``maskbench.deploy``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..runtimes.registry import deployable_runtimes
from ..utils.errors import ImageError, MaskbenchError
from ..utils.names import ResizeMode
from ..utils.run_info import run_info
from ..zoo.weights_kind import WeightsKind

if TYPE_CHECKING:
    import numpy as np

GRAPH_RUNTIMES = deployable_runtimes()  # what maskbench.deploy runs without torch


def require_graph_runtime(runtime: str | None) -> str:
    """The runtime, if actors can run it; else one line naming those that can."""
    if runtime not in GRAPH_RUNTIMES:
        given = f"runtime '{runtime}'" if runtime else "the eager model (no --runtime)"
        raise MaskbenchError(f"--engine ray runs an exported graph on its actors, not {given}: "
                             f"add --runtime {' or '.join(GRAPH_RUNTIMES)}")
    return runtime


@dataclass(frozen=True)
class ModelChoice:
    """What the driver builds: the same arguments ``predict`` takes."""

    model: str
    weights: str = "random"
    runtime: str = "onnxruntime"
    precision: str = "fp32"
    mode: ResizeMode = ResizeMode.STRETCH
    input_size: tuple[int, int] | None = None
    seed: int = 0

    def key(self) -> dict:
        size = list(self.input_size) if self.input_size else None  # "size": the key earlier runs resume by
        return {"model": self.model, "weights": self.weights, "runtime": self.runtime, "precision": self.precision,
                "mode": ResizeMode(self.mode).value, "size": size, "seed": self.seed}


def build_choice_bundle(folder: Path, choice: ModelChoice, paths: Sequence[str], threads: int,
                        batch: int = 1, calibration_images: Sequence[np.ndarray] = ()) -> dict:
    """Write the bundle into ``folder`` (its graph shaped by the first readable of ``paths``;
    ``batch``: images per call, a static batch for the rig); return predict's ``info`` block for it.
    Random weights are calibrated on that frame, as ``maskbench predict`` does, or on
    ``calibration_images`` where given (the rig: a frame of each camera)."""
    from ..data.images import load_image
    from ..export.bundle import build_bundle
    from ..predict.predictor import load_predictor
    from ..runtimes.exported import bundle_runtime
    from ..runtimes.registry import get_runtime, require_runtime

    require_runtime(choice.runtime, choice.precision)
    frame = None
    for path in paths:
        try:
            frame = load_image(Path(path))
            break
        except ImageError:
            continue
    if frame is None:
        raise MaskbenchError(f"none of the {len(paths)} image(s) can be read (first: {paths[0]}); check the input")
    if calibration_images and choice.weights == WeightsKind.RANDOM:
        from ..export.calibration import calibrated_random_model
        from ..predict.predictor import Predictor

        loaded = calibrated_random_model(choice.model, calibration_images, ResizeMode(choice.mode), choice.input_size,
                                         choice.seed)
        predictor = Predictor(loaded, ResizeMode(choice.mode), choice.input_size)
    else:
        predictor = load_predictor(choice.model, choice.weights, choice.mode, choice.input_size, frame, choice.seed)
    runtime = get_runtime(choice.runtime, predictor.loaded, mode=choice.mode, threads=threads,
                          precision=choice.precision)
    tensor, meta = predictor.prepare(frame)
    build_bundle(folder, bundle_runtime(runtime), tensor.repeat(batch, 1, 1, 1), meta.img_shape,
                 ResizeMode(choice.mode), choice.input_size)
    return run_info(predictor.loaded.spec.name, predictor.loaded.weights, ResizeMode(choice.mode),
                    choice.input_size, runtime.describe())


def bundle_key(folder: Path) -> str:
    """A given bundle's identity for resuming: its manifest's hash (which names the artifact's)."""
    from ..pipeline.manifest import MANIFEST_FILE, Manifest

    Manifest.read(folder)  # one line if it is not a bundle
    return hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()[:16]


def bundle_info(folder: Path) -> dict:
    """predict's ``info`` block for a bundle exported earlier (``maskbench export --bundle``)."""
    from ..pipeline.manifest import Manifest

    return Manifest.read(folder).run_info(f"deployed bundle {folder}")


def pack_bundle(folder: Path) -> dict[str, bytes]:
    """The bundle's files (manifest, artifact, companions) as bytes, for ``ray.put``."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def unpack_bundle(files: dict[str, bytes]) -> Path:
    """The bundle written once per node, in the temp folder under its manifest's hash (actors on
    one node, and restarted actors, share it); written aside and renamed, so never half there."""
    from ..pipeline.manifest import MANIFEST_FILE

    root = Path(tempfile.gettempdir()) / "maskbench-bundles"
    folder = root / hashlib.sha256(files[MANIFEST_FILE]).hexdigest()[:16]  # names the artifact's hash
    if (folder / MANIFEST_FILE).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root))
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    try:
        os.rename(tmp, folder)
    except OSError:  # another actor of this node renamed its copy first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
