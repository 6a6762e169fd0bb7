"""Write a deployment bundle (``maskbench export --bundle DIR``): the very file the benchmark's
runtime compiles (the fp32 ONNX export, or the int8 artifact) copied into ``DIR`` with a
:class:`~maskbench.pipeline.manifest.Manifest` that says how to feed it and what it was checked
against. Needs torch (it exports); :mod:`maskbench.deploy` reads the bundle without it."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any, Protocol

from ..data.coco_classes import COCO_CLASSES
from ..pipeline.graph_io import ExportTarget, output_names
from ..pipeline.manifest import Manifest
from ..utils.files import atomic_path, file_sha256
from .onnx_export import weights_hash

RUNTIME_MODULES = {"onnxruntime": "onnxruntime", "onnxruntime-cuda": "onnxruntime", "openvino": "openvino",
                   "tensorrt": "tensorrt"}


class GraphRuntime(Protocol):
    """What the bundle reads of a graph runtime (:class:`maskbench.runtimes.exported.ExportedGraphRuntime`;
    a protocol, since export comes before runtimes)."""

    name: str
    precision: str
    threads: int
    loaded: Any

    def graph_files(self, target: ExportTarget) -> tuple[Path, Path]: ...

    def artifact_files(self) -> list[Path]: ...


def runtime_version(name: str) -> str:
    module = importlib.import_module(RUNTIME_MODULES[name])
    return str(getattr(module, "__version__", None) or module.get_version())


def write_bundle(folder: Path, runtime: GraphRuntime, target: ExportTarget,
                 input_size: tuple[int, int] | None, latency_ms: float | None = None,
                 fidelity: dict | None = None) -> Path:
    """Copy ``runtime``'s compiled file for ``target`` (prepared already) into ``folder`` and
    write its manifest last, so a folder with a manifest always holds the files it names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _, artifact = runtime.graph_files(target)
    companions = [p for p in runtime.artifact_files() if p != artifact and p.stem == artifact.stem]
    for source in (artifact, *companions):
        with atomic_path(folder / source.name) as tmp:
            shutil.copyfile(source, tmp)
    loaded = runtime.loaded
    spec, fmt = loaded.spec, loaded.spec.input_format
    manifest = Manifest(
        model=spec.name, alias=spec.alias, family=spec.family.name, weights=str(loaded.weights),
        weights_sha256=weights_hash(loaded.model), mode=target.mode.value,
        input_size=(input_size[0], input_size[1]) if input_size else None,
        input_hw=target.input_hw, img_shape=target.img_shape,
        mean=fmt.mean, std=fmt.std, bgr=fmt.bgr, pad_value=fmt.pad_value, stretch_size=fmt.stretch_size,
        keep_ratio_scale=fmt.keep_ratio_scale, pad_to_scale=fmt.pad_to_scale, class_names=tuple(COCO_CLASSES),
        mask_threshold=float(loaded.model.detection_config.mask_thr_binary), runtime=runtime.name,
        runtime_version=runtime_version(runtime.name), precision=runtime.precision, threads=runtime.threads,
        artifact=artifact.name, artifact_sha256=file_sha256(folder / artifact.name),
        output_names=tuple(output_names(spec)), extra_files=tuple(p.name for p in companions),
        latency_ms=latency_ms, fidelity=fidelity)
    return manifest.write(folder)
