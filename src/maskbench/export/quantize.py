"""int8 post-training quantization of the exported fp32 graph, one function per library, and
the on-disk cache of what they produce.

What is quantized: the dense layers only (convolutions, the mask head's transposed convolution,
the box head's fully connected layers), weights per output channel, activations per tensor
with ranges measured on calibration frames (:mod:`.calibration`). Everything else stays fp32,
in particular the data-dependent tail: box decoding, NMS, top-k, RoIAlign and the FPN level of
each RoI (``sqrt`` of its area). NNCF would otherwise also put quantizers on ``Add``,
``Multiply``, ``Gather``, ``Concat`` and that ``Sqrt`` (measured on r50), i.e. round box
coordinates to 256 levels; ONNX Runtime is told the op types to quantize.

The prediction layers (RPN ``rpn_cls``/``rpn_reg``, box head ``fc_cls``/``fc_reg``, mask head
``conv_logits``: dense layers whose output reaches no other dense layer) stay fp32 too, in both
libraries. ONNX Runtime's QDQ ``Conv``/``Gemm`` quantize their outputs, which would round the
box deltas to 256 levels (several pixels on a large box) and tie scores that NMS and top-k then
order arbitrarily; they are a few percent of the FLOPs.

Cache: beside the fp32 ONNX file, ``<onnx stem>_int8_<library>.<ext>`` (OpenVINO: ``.xml`` +
``.bin``; ONNX Runtime: ``.onnx``) and a ``.json`` written last holding the key and every
file's sha256. The key: the fp32 export's key digest, the precision, the calibration frames'
fingerprint, the library versions and the quantization settings. An artifact whose key or
hashes differ is quantized again, in place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils.errors import MaskbenchError
from ..utils.files import atomic_open, file_sha256, silent_write_failure, writing_in
from .onnx_export import key_digest, stored_key

QUANTIZE_VERSION = 1  # bump when the quantization recipe below changes what an artifact computes
# OpenVINO op types NNCF may quantize (the ONNX Conv, ConvTranspose, MatMul and Gemm).
OPENVINO_DENSE_TYPES = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"})
ONNXRUNTIME_DENSE_TYPES = ("Conv", "MatMul", "Gemm")
_GRAPH_TYPES = frozenset({"Parameter", "Result", "Constant"})
# Where a dense layer's output becomes a prediction (see prediction_layers); "Output" and
# "Result" stand for graph outputs (ONNX / OpenVINO).
PREDICTION_SINKS = frozenset({"Output", "Result", "NonMaxSuppression", "TopK"})
ROI_ALIGN = frozenset({"RoiAlign", "ROIAlign"})
SHAPE_READERS = frozenset({"Shape", "ShapeOf", "Size"})


class QuantizationError(MaskbenchError):
    """Post-training quantization failed (message: library, model file, first line of the error)."""


@dataclass(frozen=True)
class QuantizedArtifact:
    """``path``: what the runtime loads; ``files``: everything on disk (sizes); ``built``:
    quantized by this call (``False``: taken from the cache)."""

    path: Path
    files: tuple[Path, ...]
    key: dict
    built: bool


@dataclass(frozen=True)
class Quantizer:
    """One library's recipe: file suffixes (the first is loaded), versions and settings that
    enter the key, and ``build(onnx_path, feeds, out_path)``."""

    library: str
    suffixes: tuple[str, ...]
    versions: Callable[[], dict]
    settings: dict
    build: Callable[[Path, list, Path], None]


def quantized_artifact(quantizer: Quantizer, onnx_path: Path, feeds: Sequence[dict[str, np.ndarray]],
                       fingerprint: str) -> QuantizedArtifact:
    """The int8 artifact of ``onnx_path`` for ``quantizer``: from the cache when its key and
    hashes match, else quantized now on ``feeds`` (atomically: the ``.json`` is written last)."""
    onnx_path = Path(onnx_path)
    key = {
        "fp32_onnx_key_sha256": key_digest(stored_key(onnx_path) or {"file": file_sha256(onnx_path)}),
        "precision": "int8",
        "library": quantizer.library,
        "calibration_sha256": fingerprint,
        "calibration_frames": len(feeds),
        "versions": quantizer.versions(),
        "settings": quantizer.settings,
        "quantize_version": QUANTIZE_VERSION,
    }
    stem = onnx_path.with_name(f"{onnx_path.stem}_int8_{quantizer.library}")
    files = tuple(stem.with_suffix(suffix) for suffix in quantizer.suffixes)
    record = stem.with_suffix(".json")
    if _cached(record, key, files):
        return QuantizedArtifact(files[0], files, key, built=False)
    # A write error (full disk, read-only cache) is WriteFailed, not a failed quantization.
    folder = onnx_path.parent
    with writing_in(folder), tempfile.TemporaryDirectory(prefix=stem.name + ".", dir=folder) as tmp:
        built = Path(tmp) / f"model{quantizer.suffixes[0]}"
        try:
            with writing_in(folder):
                quantizer.build(onnx_path, list(feeds), built)
        except MaskbenchError:
            raise
        except Exception as err:  # noqa: BLE001 - one line naming the library and file
            # OpenVINO reports a failed write without errno: the folder's state says if it was one.
            failure = silent_write_failure(folder, onnx_path.stat().st_size, "the int8 artifact")
            if failure is not None:
                raise failure from err
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise QuantizationError(f"int8 quantization of {onnx_path.name} with {quantizer.library} failed: "
                                    f"{first}") from err
        record.unlink(missing_ok=True)  # the old record no longer describes the files being replaced
        for suffix, final in zip(quantizer.suffixes, files):
            os.replace(built.with_suffix(suffix), final)
    hashes = {f.name: file_sha256(f) for f in files}
    with atomic_open(record) as file:
        file.write(json.dumps({"key": key, "sha256": hashes}, indent=2, sort_keys=True) + "\n")
    return QuantizedArtifact(files[0], files, key, built=True)


def _cached(record: Path, key: dict, files: Sequence[Path]) -> bool:
    try:
        stored = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    if stored.get("key") != json.loads(json.dumps(key)):
        return False
    hashes = stored.get("sha256", {})
    return all(f.is_file() and hashes.get(f.name) == file_sha256(f) for f in files)



@contextlib.contextmanager
def _quiet(*loggers: str):
    """Both libraries log a line per skipped node or missing pre-processing step."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


# --- OpenVINO + NNCF -------------------------------------------------------------------------


def prediction_layers(nodes: Sequence, op_type: Callable, consumers: Callable, dense: frozenset[str]) -> list:
    """The dense ``nodes`` whose output values reach a prediction without passing through another
    dense node: a graph output, ``NonMaxSuppression``, ``TopK`` or the boxes input of
    ``RoiAlign``. ``consumers(node)`` -> ``(node, input index)`` pairs. Shape-reading ops end a
    path (a feature map's size, not its values, sizes the anchor grid)."""

    def predicts(node) -> bool:
        seen, stack = set(), list(consumers(node))
        while stack:
            nxt, index = stack.pop()
            kind = op_type(nxt)
            if kind in PREDICTION_SINKS or (kind in ROI_ALIGN and index == 1):
                return True
            if kind in dense or kind in SHAPE_READERS or id(nxt) in seen:
                continue
            seen.add(id(nxt))
            stack.extend(consumers(nxt))
        return False

    return [node for node in nodes if op_type(node) in dense and predicts(node)]


def openvino_quantizer(transformer: bool = False) -> Quantizer:
    """NNCF ``quantize`` with the PERFORMANCE preset (symmetric int8, what OpenVINO's CPU
    kernels run fastest) and, for transformer backbones (Swin), ``ModelType.TRANSFORMER``."""
    settings = {"preset": "performance", "model_type": "transformer" if transformer else None,
                "quantized_types": sorted(OPENVINO_DENSE_TYPES)}

    def versions() -> dict:
        import nncf
        import openvino

        return {"nncf": nncf.__version__, "openvino": openvino.__version__}

    return Quantizer("openvino", (".xml", ".bin"), versions, settings,
                     lambda onnx_path, feeds, out: quantize_openvino(onnx_path, feeds, out, transformer))


def quantize_openvino(onnx_path: Path, feeds: list[dict[str, np.ndarray]], out_xml: Path,
                      transformer: bool = False) -> None:
    """Read ``onnx_path`` into OpenVINO, quantize its dense layers with NNCF on ``feeds`` (all
    of them), save the IR (``out_xml`` + its ``.bin``, weights not compressed to fp16)."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    ops = list(model.get_ops())
    tail = sorted({op.get_type_name() for op in ops} - OPENVINO_DENSE_TYPES - _GRAPH_TYPES)
    predictions = prediction_layers(
        ops, lambda op: op.get_type_name(),
        lambda op: [(t.get_node(), t.get_index()) for out in op.outputs() for t in out.get_target_inputs()],
        OPENVINO_DENSE_TYPES)
    with _quiet("nncf"):
        quantized = nncf.quantize(
            model, nncf.Dataset(feeds), subset_size=len(feeds), preset=nncf.QuantizationPreset.PERFORMANCE,
            model_type=nncf.ModelType.TRANSFORMER if transformer else None,
            ignored_scope=nncf.IgnoredScope(names=[op.get_friendly_name() for op in predictions], types=tail,
                                            validate=False))
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)


# --- ONNX Runtime ----------------------------------------------------------------------------


def onnxruntime_quantizer(reduce_range: bool) -> Quantizer:
    """``quantize_static``, QDQ, per-channel int8 weights, uint8 activations (MinMax ranges);
    ``reduce_range``: 7-bit weights, ONNX Runtime's advice for CPUs without VNNI, whose
    ``VPMADDUBSW`` can saturate on 8-bit products."""
    settings = {"format": "QDQ", "per_channel": True, "reduce_range": reduce_range, "activations": "uint8",
                "weights": "int8", "calibration": "minmax", "op_types": list(ONNXRUNTIME_DENSE_TYPES)}

    def versions() -> dict:
        import onnx
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}

    return Quantizer("onnxruntime", (".onnx",), versions, settings,
                     lambda onnx_path, feeds, out: quantize_onnxruntime(onnx_path, feeds, out, reduce_range))


def quantize_onnxruntime(onnx_path: Path, feeds: list[dict[str, np.ndarray]], out_onnx: Path,
                         reduce_range: bool) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self):
            return next(self._feeds, None)

    proto = unshare_initializers(onnx.load(str(onnx_path)))
    predictions = prediction_layers(list(proto.graph.node), lambda node: node.op_type, _onnx_consumers(proto),
                                    frozenset(ONNXRUNTIME_DENSE_TYPES) | {"ConvTranspose"})
    prepared = out_onnx.with_name("fp32_unshared.onnx")
    onnx.save(proto, str(prepared))
    with _quiet("root", "onnxruntime"):
        quantize_static(
            str(prepared), str(out_onnx), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
            reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=list(ONNXRUNTIME_DENSE_TYPES), calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=[node.name for node in predictions])
    prepared.unlink()


def _onnx_consumers(proto) -> Callable:
    """``node -> [(consumer, input index)]``; a graph output is a consumer of type ``Output``."""
    from onnx import NodeProto

    by_input: dict[str, list] = {}
    for node in proto.graph.node:
        for index, name in enumerate(node.input):
            by_input.setdefault(name, []).append((node, index))
    for output in proto.graph.output:
        by_input.setdefault(output.name, []).append((NodeProto(op_type="Output"), 0))
    return lambda node: [pair for name in node.output for pair in by_input.get(name, [])]


def unshare_initializers(proto):
    """Replace each ``Identity`` of an initializer by a copy of it.

    The TorchScript exporter stores identical tensors once (random weights: every zero bias) and
    reads the others through ``Identity`` nodes. ``quantize_static`` then finds a bias that is
    not an initializer, leaves it fp32, and ONNX Runtime cannot fuse that convolution into
    ``QLinearConv``: measured on r50, the int8 model ran slower than fp32.
    """
    from onnx import TensorProto

    initializers = {t.name: t for t in proto.graph.initializer}
    kept = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            proto.graph.initializer.append(copy)
        else:
            kept.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(kept)
    return proto

