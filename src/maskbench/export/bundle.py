"""Write a deployment bundle (``maskbench export --bundle DIR``): the very file the benchmark's
runtime compiles (the fp32 ONNX export, or the int8 artifact) copied into ``DIR`` with a
:class:`~maskbench.pipeline.manifest.Manifest` that says how to feed it and what it was checked
against. Needs torch (it exports); :mod:`maskbench.deploy` reads the bundle without it."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from ..data.coco_classes import COCO_CLASSES
from ..pipeline.bundle_keys import load_private_key
from ..pipeline.bundle_seal import SEAL_FILE, file_digests, seal_bundle
from ..pipeline.graph_io import ExportTarget, output_names
from ..pipeline.manifest import MANIFEST_FILE, BundleError, Manifest
from ..utils.files import atomic_path, file_sha256
from ..utils.names import ResizeMode
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

    def prepare(self, images: Any, img_shape: tuple[int, int]) -> None: ...

    def graph_files(self, target: ExportTarget) -> tuple[Path, Path]: ...

    def artifact_files(self) -> list[Path]: ...


def runtime_version(name: str) -> str:
    module = importlib.import_module(RUNTIME_MODULES[name])
    return str(getattr(module, "__version__", None) or module.get_version())


def build_bundle(folder: Path, runtime: GraphRuntime, tensor: Any, img_shape: tuple[int, int], mode: ResizeMode,
                 input_size: tuple[int, int] | None, *, latency_ms: float | None = None,
                 fidelity: dict | None = None, sign_key: Path | None = None) -> Path:
    """The one way a bundle is built (``export --bundle``, ``recommend --bundle``, the bundle Ray
    ships, the rig's cached one): ``runtime`` prepared for the graph that ``tensor`` (a preprocessed
    frame of ``img_shape``, or B of them: a static-batch graph) needs, then written by :func:`write_bundle`."""
    runtime.prepare(tensor, img_shape)  # a no-op where the runtime already has this graph
    return write_bundle(folder, runtime, ExportTarget.for_input(tensor, img_shape, mode), input_size,
                        latency_ms, fidelity, sign_key)


def write_bundle(folder: Path, runtime: GraphRuntime, target: ExportTarget,
                 input_size: tuple[int, int] | None, latency_ms: float | None = None,
                 fidelity: dict | None = None, sign_key: Path | None = None) -> Path:
    """Copy ``runtime``'s compiled file for ``target`` (prepared already) into ``folder`` and
    write its manifest (every file's sha256) and seal last, so a sealed folder always holds the
    files it names (:mod:`maskbench.pipeline.bundle_seal`); ``sign_key``: sign it with that Ed25519 key."""
    private_key = load_private_key(sign_key) if sign_key is not None else None  # refused before any file is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _, artifact = runtime.graph_files(target)
    companions = [p for p in runtime.artifact_files() if p != artifact and p.stem == artifact.stem]
    clear_previous_bundle(folder)
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
        input_format=fmt, class_names=tuple(COCO_CLASSES),
        mask_threshold=float(loaded.model.detection_config.mask_thr_binary), runtime=runtime.name,
        runtime_version=runtime_version(runtime.name), precision=runtime.precision, threads=runtime.threads,
        artifact=artifact.name, artifact_sha256=file_sha256(folder / artifact.name),
        output_names=tuple(output_names(spec, target.batch)), extra_files=tuple(p.name for p in companions),
        files=file_digests(folder, (artifact.name, *(p.name for p in companions))),
        latency_ms=latency_ms, fidelity=fidelity, batch=target.batch)
    return seal_bundle(folder, manifest, private_key)


def clear_previous_bundle(folder: Path) -> None:
    """Remove a previous bundle's files (the seal first: a half-rewritten folder is refused as
    unsealed); refuse a folder holding anything else, since deploy refuses a file the manifest
    does not list."""
    previous: set[str] = set()
    if (folder / MANIFEST_FILE).is_file():
        try:
            data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            previous = {*data.get("files", {}), data.get("artifact", ""), *data.get("extra_files", ())}
        except (OSError, ValueError, TypeError, AttributeError):
            previous = set()
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in previous | {MANIFEST_FILE, SEAL_FILE})
    if foreign:
        raise BundleError(f"{folder}: holds {foreign[0]}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, "
                          "which is not part of a bundle (a bundle folder holds its own files only); give "
                          "--bundle an empty or new folder")
    for name in (SEAL_FILE, MANIFEST_FILE, *sorted(previous)):
        if name and Path(name).name == name:
            (folder / name).unlink(missing_ok=True)
