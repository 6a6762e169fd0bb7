"""Export a zoo model to standard ONNX, cached on disk and checked before it is trusted.

The graph is :class:`~maskbench.export.graph.DetectorGraph` (Mask R-CNN) or
:class:`~maskbench.export.graph_rtmdet.RTMDetGraph`: one normalised, padded image in;
``boxes`` (D, 4) in resized-image pixels, ``scores`` (D,), ``labels`` (D,) int64 and the masks
out: ``mask_probs`` (D, 28, 28) or ``mask_logits`` (D, H/8, W/8) (:func:`output_names`), D <= 100
(exactly 100 with ``fixed_count``). Mask pasting stays outside, in :mod:`maskbench.pipeline.postprocess`,
as for eager.

The TorchScript exporter is used (``dynamo=False``, opset 17): the dynamo exporter fails on the
data-dependent shapes of NMS. Only standard ``ai.onnx`` operators come out (``RoiAlign`` with
``half_pixel``, ``NonMaxSuppression``, ``TopK``, ``NonZero``...), so any ONNX runtime can run it.

Two variants, both with a static input size (TensorRT/MMDeploy style):
- stretch (default 1344x800): the resized shape equals the input size and is baked in; one
  input ``images`` (1, 3, H, W);
- keep-ratio: the resized shape differs per image, so it is a second input ``img_shape``
  (int64 ``[h, w]``); ``images`` is static at the padded size, e.g. 1600x900 frames resized to
  1333x750 are padded to 1344x768, so the graph takes (1, 3, 768, 1344). A frame of another
  aspect ratio pads to another size and needs its own export (runtimes do that on demand).

Cache: an exported file is named after its key, and the key (model name, a hash of the
weights, input size, mode, opset, torch/torchvision versions, the graph's own version and the
detection settings) is also stored in the file's ``metadata_props``. A file whose stored key
does not match, or that does not load, is exported again, never trusted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..models.detector import RawDetections
from ..models.factory import LoadedModel
from ..pipeline.graph_io import (  # noqa: F401 (re-exported: the torch-free part, also deploy's)
    FAMILY_PROP,
    INPUT_NAMES_KEEP_RATIO,
    INPUT_NAMES_STRETCH,
    KEY_PROP,
    ExportTarget,
    array_feeds,
    output_names,
)
from ..utils.errors import MaskbenchError
from ..utils.files import atomic_path, cache_dir, writing_in
from ..utils.packages import require_package
from ..zoo import ModelSpec, locate

OPSET = 17
GRAPH_VERSION = 1  # bump when a graph or the export settings change what a file computes
STANDARD_DOMAINS = ("", "ai.onnx")


class ExportError(MaskbenchError):
    """A model that could not be exported, or an exported file that cannot be used."""


def raw_from_outputs(spec: ModelSpec, outputs: Sequence[np.ndarray]) -> RawDetections:
    """The eager model's output type from a graph's four outputs (copied: runtimes reuse buffers)."""
    boxes, scores, labels, masks = (torch.from_numpy(np.array(v, dtype=dtype, copy=True))
                                    for v, dtype in zip(outputs, (np.float32, np.float32, np.int64, np.float32)))
    return RawDetections(boxes, scores, labels, masks)


def graph_feeds(images: torch.Tensor, img_shape: tuple[int, int], target: ExportTarget) -> dict[str, np.ndarray]:
    """:func:`.graph_io.array_feeds` of a tensor."""
    return array_feeds(images.detach().cpu().numpy(), img_shape, target)


def export_cache_dir() -> Path:
    """``onnx/`` in maskbench's cache (:func:`maskbench.utils.files.cache_root`)."""
    return cache_dir("onnx")


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 of the state_dict (names, dtypes, shapes and values): the weights' identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def export_key(loaded: LoadedModel, target: ExportTarget, opset: int = OPSET) -> dict:
    """Everything an exported file depends on."""
    model = loaded.model
    return {
        "model": loaded.spec.name,
        "weights_sha256": weights_hash(model),
        "input_hw": list(target.input_hw),
        "img_shape": list(target.img_shape) if target.img_shape is not None else "input",
        "mode": target.mode.value,
        "batch": target.batch,
        "opset": opset,
        "torch": torch.__version__,
        "torchvision": torchvision_version(),
        "graph_version": GRAPH_VERSION,
        "graph_source": graph_source_hash(loaded.spec),
        "family": loaded.spec.family.name,
        **model.export_settings(),
    }


def graph_source_hash(spec: ModelSpec) -> str:
    """sha256 of the code a traced graph comes from: every module of ``maskbench.models``, the
    export graph modules and this one, and the family's own ``model`` and ``graph`` modules (a
    family from outside maskbench). An edit there makes a new key, so no stale file is reused
    (``GRAPH_VERSION`` stays for changes elsewhere, e.g. in torch's lowering)."""
    return _source_hash((spec.family.model.partition(":")[0], spec.family.graph.partition(":")[0]))


@functools.cache
def _source_hash(family_modules: tuple[str, ...]) -> str:
    import importlib.util

    from .. import models

    files = set(Path(models.__file__).parent.rglob("*.py"))
    files |= set(Path(__file__).parent.glob("graph*.py")) | {Path(__file__)}
    for module in family_modules:
        found = importlib.util.find_spec(module)
        if found is not None and found.origin:
            files.add(Path(found.origin))
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.resolve().as_posix()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def torchvision_version() -> str:
    """``torchvision.__version__`` (with its local part, e.g. ``+cu130``) without importing the
    package where it is not loaded yet: a cache lookup in a deployed process should not pull in
    torchvision's ops (~170 MB resident) just to read a string."""
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"].__version__
    import importlib.util
    import re

    spec = importlib.util.find_spec("torchvision")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        version_file = Path(location) / "version.py"
        if version_file.is_file():
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", version_file.read_text(), re.MULTILINE)
            if found:
                return found.group(1)
    import torchvision

    return torchvision.__version__


def key_digest(key: dict | None) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def onnx_file_name(loaded: LoadedModel, target: ExportTarget, key: dict) -> str:
    height, width = target.input_hw
    batch = f"_b{target.batch}" if target.batch > 1 else ""
    return f"{loaded.spec.alias}_{target.mode.value}_{width}x{height}{batch}_{key_digest(key)[:16]}.onnx"


def stored_key(path: Path) -> dict | None:
    """The export key inside ``path``'s metadata, or ``None`` if unreadable or absent."""
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a truncated or foreign file is simply not trusted
        return None
    for prop in proto.metadata_props:
        if prop.key == KEY_PROP:
            try:
                return json.loads(prop.value)
            except json.JSONDecodeError:
                return None
    return None


def export_onnx(
    loaded: LoadedModel,
    target: ExportTarget,
    cache_dir: Path | None = None,
    opset: int = OPSET,
    force: bool = False,
) -> Path:
    """The ONNX file of ``loaded`` for ``target``: from the cache when its key matches, else
    exported now (atomically: a crash never leaves a half-written file under the final name)."""
    require_package("onnx")
    key = export_key(loaded, target, opset)
    cache_dir = Path(cache_dir) if cache_dir is not None else export_cache_dir()
    path = cache_dir / onnx_file_name(loaded, target, key)
    if not force and path.is_file() and stored_key(path) == key:
        return path
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create the export cache {cache_dir} ({err}); set MASKBENCH_CACHE "
                          "to a writable folder") from None
    with atomic_path(path) as tmp:
        _trace_to_onnx(loaded, target, tmp, opset)
        _write_metadata(tmp, key, loaded.spec)
    return path


def _trace_to_onnx(loaded: LoadedModel, target: ExportTarget, path: Path, opset: int) -> None:
    model = loaded.model.eval()
    family = loaded.spec.family
    if target.batch > 1 and not family.static_batch:
        raise ExportError(f"the {family.display_name} export graph takes one image; export {loaded.spec.name} "
                          "without --batch")
    graph: torch.nn.Module = locate(family.graph)(model, target.img_shape).eval()
    outputs = output_names(loaded.spec, target.batch)
    height, width = target.input_hw
    images = _example_input(loaded, target).repeat(target.batch, 1, 1, 1)
    args: tuple = (images,)
    if target.img_shape is None:
        shape = torch.tensor(_example_img_shape(target), dtype=torch.int64)
        args = (images, shape if target.batch == 1 else shape.repeat(target.batch, 1))
    dynamic_axes = {name: {0: "detections"} for name in outputs}
    with torch.no_grad(), warnings.catch_warnings(), _nms_sorted_by_score(opset):
        # The tracer warns about every Python value it freezes; those left in the graph depend
        # on the static input size only (see export/graph.py).
        warnings.simplefilter("ignore")
        try:
            with writing_in(path.parent):  # a full disk is that, not a failed export
                torch.onnx.export(
                    graph, args, str(path), dynamo=False, opset_version=opset,
                    input_names=target.input_names, output_names=outputs, dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
        except MaskbenchError:
            raise
        except Exception as err:  # noqa: BLE001 - shown as one line with the model and size
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"ONNX export of {loaded.spec.name} at {width}x{height} failed: {message}") from err


@contextlib.contextmanager
def _nms_sorted_by_score(opset: int):
    """While exporting, lower ``torchvision.ops.nms`` to ``NonMaxSuppression`` followed by a
    descending sort of the kept indices by score.

    The model relies on NMS returning its kept boxes by descending score (the RPN keeps the
    first 1000, the box head the first 100), as torchvision does. ONNX does not define the
    order of ``NonMaxSuppression``'s output, and OpenVINO does not give it by score (measured:
    the RPN then kept another set of 1000 proposals). ``TopK`` over all kept indices restores
    it; its ties go to the lower position, i.e. NMS's own order, so where NMS already sorts
    (ONNX Runtime) nothing changes. Registered for this opset only and removed afterwards, so
    torchvision's own lowering is untouched outside maskbench's export.
    """
    from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic
    from torch.onnx.symbolic_helper import parse_args
    from torchvision.ops._register_onnx_ops import symbolic_multi_label_nms

    @parse_args("v", "v", "f")
    def nms_sorted(g, boxes, scores, iou_threshold):
        kept = symbolic_multi_label_nms(g, boxes, scores, iou_threshold)
        kept_scores = g.op("Gather", scores, kept, axis_i=0)
        _, order = g.op("TopK", kept_scores, g.op("Shape", kept), axis_i=0, largest_i=1, sorted_i=1, outputs=2)
        return g.op("Gather", kept, order, axis_i=0)

    register_custom_op_symbolic("torchvision::nms", nms_sorted, opset)
    try:
        yield
    finally:
        unregister_custom_op_symbolic("torchvision::nms", opset)


def _example_img_shape(target: ExportTarget) -> tuple[int, int]:
    return target.img_shape if target.img_shape is not None else target.input_hw


def _example_input(loaded: LoadedModel, target: ExportTarget) -> torch.Tensor:
    """A real frame at the target size: tracing runs the model once, and a real frame gives
    proposals and detections on every path (random noise could leave parts unexercised)."""
    from ..data.images import load_image
    from ..data.sources import embedded_nuscenes, find_images
    from ..models.inputs import pad_like_pipeline, preprocess
    from ..pipeline.preprocess import ResizeMode

    height, width = _example_img_shape(target)
    frame = load_image(find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path)
    tensor, _ = preprocess(frame, ResizeMode.STRETCH, (width, height), loaded.spec.input_format)
    return pad_like_pipeline(tensor, target.input_hw, loaded.spec.input_format).contiguous()


def _write_metadata(path: Path, key: dict, spec: ModelSpec) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    family = spec.family
    for name, value in (
        (KEY_PROP, json.dumps(key, sort_keys=True)),
        (FAMILY_PROP, family.name),
        ("maskbench.outputs", "boxes (D,4) resized-image px; scores (D,); labels (D,) 0..79; "
                              f"{family.masks_output} {family.masks_doc}"),
        ("maskbench.inputs", f"images ({key['batch']},3,H,W) normalised, zero-padded" + (
            "; img_shape int64 [h, w] of the resized image" + (" per image (B, 2)" if key["batch"] > 1 else "")
            if key["img_shape"] == "input" else "")),
    ):
        prop = proto.metadata_props.add()
        prop.key, prop.value = name, value
    proto.producer_name = "maskbench"
    onnx.save(proto, str(path))


def nonstandard_ops(path: Path) -> list[str]:
    """``domain::op_type`` of every node outside the standard ONNX domain (should be empty)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    found = set()

    def visit(graph):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS:
                found.add(f"{node.domain}::{node.op_type}")
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g)
                for sub in attr.graphs:
                    visit(sub)

    visit(proto.graph)
    return sorted(found)
