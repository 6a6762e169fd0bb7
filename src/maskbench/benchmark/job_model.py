"""A benchmark job's network and runtime, built once here for the worker that times it and for
``maskbench recommend --bundle``, which exports the pick: the same calibration frames, seed and
settings give the same weights, so the bundle is the network that was measured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..export.calibration import calibration_frames, random_weights_calibration
from ..models.factory import RANDOM, LoadedModel, create_model
from ..pipeline.preprocess import ResizeMode
from ..results.records import BenchmarkJob
from ..zoo import get_spec


def job_model(job: BenchmarkJob, images: Sequence[np.ndarray]) -> LoadedModel:
    """The job's model; random weights are calibrated on the job's own frames (see random_init)."""
    mode = ResizeMode(job.mode)
    calibration = {}
    if job.weights == RANDOM:
        calibration = random_weights_calibration(get_spec(job.model), list(images),
                                                 job.input_size if mode is ResizeMode.STRETCH else None,
                                                 keep_ratio=mode is ResizeMode.KEEP_RATIO)
    return create_model(job.model, job.weights, seed=job.seed, progress=False, **calibration)


def job_runtime(job: BenchmarkJob, loaded: LoadedModel, images: Sequence[np.ndarray]):
    """The job's runtime on ``loaded``; int8 calibrates its quantisation on the job's frames too."""
    from ..runtimes.registry import get_runtime

    int8_frames = {"calibration_images": calibration_frames(list(images))} if job.precision == "int8" else {}
    return get_runtime(job.runtime, loaded, mode=ResizeMode(job.mode), device=job.device, threads=job.threads,
                       precision=job.precision, **int8_frames)


def export_job_bundle(job: BenchmarkJob, folder: Path, latency_ms: float | None = None,
                      fidelity: dict | None = None, sign_key: Path | None = None) -> Path:
    """The job's network as a deployment bundle (``maskbench.deploy``), for the graph its first
    frame needs; ``latency_ms``/``fidelity``: what the benchmark measured, kept in the manifest."""
    from ..data.images import load_image
    from ..export.bundle import build_bundle
    from ..models.inputs import preprocess
    from ..runtimes.exported import bundle_runtime

    images = [load_image(path) for path in job.images]
    runtime = bundle_runtime(job_runtime(job, job_model(job, images), images))
    tensor, meta = preprocess(images[0], ResizeMode(job.mode), job.input_size, runtime.loaded.spec.input_format)
    return build_bundle(folder, runtime, tensor, meta.img_shape, ResizeMode(job.mode), job.input_size,
                        latency_ms=latency_ms, fidelity=fidelity, sign_key=sign_key)
