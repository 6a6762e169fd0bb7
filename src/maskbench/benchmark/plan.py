"""From the command line's choices to the list of :class:`~maskbench.results.records.BenchmarkJob` s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..data.sources import STUDY_CAMERAS, embedded_nuscenes, find_images, is_nuscenes_folder
from ..pipeline.preprocess import ResizeMode
from ..results.records import BenchmarkJob
from ..utils.errors import MaskbenchError
from ..zoo import STUDY_MODELS, get_spec
from .preflight import JobPlan, check_names, runnable_plan

# Fastest first: the runtime `benchmark` picks when none is named.
PREFERRED_GPU = ("tensorrt", "torch-compile", "onnxruntime-cuda", "torch")
PREFERRED_CPU = ("openvino", "onnxruntime", "torch")


def resolve_models(names: Sequence[str] | None) -> list[str]:
    """Zoo names for the given names/aliases (named sets are expanded by the parser); default the
    study's five."""
    if not names:
        return list(STUDY_MODELS)
    return [get_spec(name).name for name in names]  # an unknown name: one line listing the zoo


def default_runtimes() -> list[str]:
    """The best runtime installed here: a GPU one when CUDA works, else the fastest CPU one."""
    import torch

    from ..runtimes.registry import available_runtimes

    installed = available_runtimes()
    order = PREFERRED_GPU if torch.cuda.is_available() else PREFERRED_CPU
    return [next(name for name in order if name in installed)]


@dataclass(frozen=True)
class JobSpec:
    """The settings every job of a run shares; :func:`plan_jobs` crosses them with the models,
    runtimes and precisions. ``images`` None: the embedded nuScenes frames (a nuScenes folder:
    the study's cameras unless ``cameras`` says); ``weights``: ``random``, ``official`` or a
    checkpoint path; ``coco`` (with ``coco_images``, default beside it in COCO's layout): also
    measure AP; ``fidelity``: also compare with fp32 eager PyTorch."""

    images: Path | None = None
    cameras: Sequence[str] | None = None
    mode: ResizeMode = ResizeMode.STRETCH
    input_size: tuple[int, int] | None = None
    weights: str = "random"
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    warmup: int = 2
    repeat: int = 3
    stages: bool = False
    coco: Path | None = None
    coco_images: Path | None = None
    coco_max_images: int | None = None
    fidelity: bool = False
    fidelity_precisions: Sequence[str] = ()  # measured with fidelity even without ``fidelity``


def plan_jobs(models: Sequence[str], runtimes: Sequence[str], precisions: Sequence[str],
              spec: JobSpec = JobSpec()) -> JobPlan:
    """One job per model x runtime x precision, all with ``spec``'s settings on the same frames;
    what can be refused without a model is refused here, before any worker starts
    (:mod:`.preflight`: unknown names, no job able to run; jobs that can never run here are
    left out, ``.left_out``)."""
    check_names(models, runtimes, precisions)
    if spec.warmup < 0 or spec.repeat < 1:
        raise MaskbenchError(f"--warmup must be >= 0 and --repeat >= 1 (got {spec.warmup}, {spec.repeat})")
    source = Path(spec.images) if spec.images is not None else embedded_nuscenes()
    cameras = spec.cameras
    if cameras is None and is_nuscenes_folder(source):
        cameras = list(STUDY_CAMERAS)
    refs = find_images(source, cameras)
    paths = tuple(str(ref.path.resolve()) for ref in refs)
    cams = tuple(ref.camera for ref in refs)
    coco_fields = _coco_fields(spec.coco, spec.coco_images, spec.coco_max_images)
    weights = spec.weights if spec.weights in ("random", "official") else str(Path(spec.weights).resolve())
    input_size = cast("tuple[int, int]", tuple(spec.input_size)) if spec.input_size else None
    return runnable_plan([
        BenchmarkJob(model=model, runtime=runtime, precision=precision, weights=weights, seed=spec.seed,
                     mode=ResizeMode(spec.mode).value, input_size=input_size, device=spec.device,
                     threads=spec.threads, warmup=spec.warmup, repeat=spec.repeat, images=paths, cameras=cams,
                     stages=spec.stages,
                     fidelity=bool(spec.fidelity) or precision in spec.fidelity_precisions, **coco_fields)
        for model in models for runtime in runtimes for precision in precisions
    ])


def _coco_fields(coco: Path | None, images: Path | None, max_images: int | None) -> dict:
    """Checked now, so a wrong path fails before an hour of timing, not after."""
    if coco is None:
        return {}
    coco = Path(coco)
    if not coco.is_file():
        raise MaskbenchError(f"{coco}: no such COCO annotation file; check --coco")
    if images is None:  # COCO's layout: annotations/instances_X.json beside X/
        stem = coco.stem.split("_", 1)[-1]
        images = coco.parent.parent / stem
    if not Path(images).is_dir():
        raise MaskbenchError(f"{images}: no such image folder for {coco.name}; give it with --coco-images")
    return {"coco": str(coco.resolve()), "coco_images": str(Path(images).resolve()), "coco_max_images": max_images}
