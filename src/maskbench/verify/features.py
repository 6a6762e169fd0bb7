"""Feature taps: the five FPN outputs (P2..P6) of one input, as a runtime computes them.

Why: a Mask R-CNN with random weights is chaotic (1e-3 relative noise on the input already
moves the FPN features by 10-20%, and bf16 features at cosine 0.98 change most of the 100
detections), so detections say nothing about a reduced precision's or a conversion's cost
without trained weights. The FPN outputs can: they are the last dense tensors before the
data-dependent part (proposals, NMS, top-k), compared with fp32 eager by cosine and relative
error (:func:`compare_features`).

How each runtime gives them, in its own precision:

- ``torch`` / ``torch-compile``: the runtime's own ``model.extract_features``, i.e. its private
  copy wrapped in bf16 autocast or cast to fp16, and compiled for ``torch-compile``
  (:mod:`.torch_`, :mod:`.torch_compile`); outputs cast to float32.
- ONNX Runtime / OpenVINO: the very file the runtime compiled (the fp32 export, or the int8
  artifact for int8) compiled a second time by the runtime's own ``_compile`` (same threads,
  precision hint, providers) with the FPN tensors added as graph outputs. The names are found
  in the fp32 export (:func:`fpn_tensor_names`); the quantized files keep them. An extra output
  can stop a runtime from fusing its producer with the consumer (int8: ONNX Runtime's
  ``QLinearConv`` needs its output internal), so an int8 tap reads the convolution's output
  before it is rounded again for the next layer: the error of the layers that made it.
- TensorRT: not available (untested here; an engine with extra outputs is a second build).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import MaskbenchError
from ..models.factory import LoadedModel
from .base import Runtime

FPN_LEVELS = ("P2", "P3", "P4", "P5", "P6")
GRAPH_RUNTIMES = ("onnxruntime", "onnxruntime-cuda", "openvino")
_FPN_CONV = re.compile(r"^(?:/model)?/neck/fpn_convs\.(\d+)/")
_NECK = re.compile(r"^(?:/model)?/neck/")
_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})


class FeatureTapUnavailable(MaskbenchError):
    """The runtime cannot hand out its FPN features (TensorRT, or a graph without them)."""


def fpn_tensor_names(onnx_path: Path | str) -> list[str]:
    """The ONNX tensor names of P2..P6 in an exported graph.

    The TorchScript exporter names nodes by module scope: each ``/neck/fpn_convs.<i>/`` scope's
    last node (quantization's Q/DQ nodes aside) makes level ``i``; the extra levels are the
    neck's ``MaxPool`` nodes, each on the level before it."""
    import onnx

    graph_nodes = onnx.load(str(onnx_path), load_external_data=False).graph.node
    through_qdq = {n.output[0]: n.input[0] for n in graph_nodes if n.op_type in _QDQ}

    def source(tensor: str) -> str:  # through the Q/DQ pairs a QDQ-quantized graph inserts
        while tensor in through_qdq:
            tensor = through_qdq[tensor]
        return tensor

    nodes = [n for n in graph_nodes if n.op_type not in _QDQ]
    last: dict[int, str] = {}
    for node in nodes:
        match = _FPN_CONV.match(node.name)
        if match:
            last[int(match.group(1))] = node.output[0]
    names = [last[i] for i in sorted(last)]
    while names:
        pooled = [n for n in nodes
                  if n.op_type == "MaxPool" and _NECK.match(n.name) and source(n.input[0]) == names[-1]]
        if not pooled:
            break
        names.append(pooled[0].output[0])
    if len(names) != len(FPN_LEVELS) or sorted(last) != list(range(len(last))):
        raise FeatureTapUnavailable(f"{onnx_path}: found {len(names)} FPN output(s) ({', '.join(names) or 'none'}), "
                                    f"expected {len(FPN_LEVELS)} (/neck/fpn_convs.0-3 and the neck's MaxPool)")
    return names


def reference_features(loaded: LoadedModel, images: torch.Tensor) -> list[np.ndarray]:
    """P2..P6 of fp32 eager PyTorch (``loaded.model``), float32."""
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        return [f.float().cpu().numpy() for f in loaded.model.extract_features(images.to(device))]


def eager_outputs(loaded: LoadedModel, images: torch.Tensor, img_shape: tuple[int, int]):
    """fp32 eager's detections (``RawDetections``) and P2..P6 from ONE forward pass: the FPN
    outputs are caught by a hook on ``model.neck`` (what ``extract_features`` returns)."""
    model = loaded.model
    caught: list[list[np.ndarray]] = []
    handle = model.neck.register_forward_hook(
        lambda module, args, outputs: caught.append([f.float().cpu().numpy() for f in outputs]))
    try:
        with torch.inference_mode():
            raw = model(images.to(next(model.parameters()).device), [tuple(img_shape)])[0]
    finally:
        handle.remove()
    return raw, caught[0]


class FeatureTap:
    """``tap(images (1,3,H,W), img_shape) -> [P2..P6]`` (float32 NumPy) computed by ``runtime``.
    Graph runtimes compile their tap once per input size, on first use."""

    def __init__(self, runtime: Runtime) -> None:
        model = getattr(runtime, "model", None)
        if runtime.name == "tensorrt":
            raise FeatureTapUnavailable(
                "feature taps are not available for tensorrt (untested here: an engine with the FPN outputs added "
                "would be a second build); compare its detections, or the same graph on onnxruntime-cuda")
        if runtime.name not in GRAPH_RUNTIMES and not hasattr(model, "extract_features"):
            raise FeatureTapUnavailable(f"feature taps are not available for runtime '{runtime.name}'")
        self.runtime = runtime
        self._compiled: dict = {}  # ExportTarget -> (compiled graph, tensor names)

    def __call__(self, images: torch.Tensor, img_shape: tuple[int, int]) -> list[np.ndarray]:
        runtime = self.runtime
        if runtime.name not in GRAPH_RUNTIMES:
            if getattr(runtime, "on_cuda", False) and getattr(runtime, "compile_mode", "") == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            with torch.inference_mode():
                features = runtime.model.extract_features(images.to(runtime.device))
            return [f.float().cpu().numpy() for f in features]
        return self._graph_features(images, img_shape)

    def _graph_features(self, images: torch.Tensor, img_shape: tuple[int, int]) -> list[np.ndarray]:
        from .exported import graph_feeds
        from .onnx_export import ExportTarget

        runtime = self.runtime
        target = ExportTarget.for_input(images, img_shape, runtime.mode)
        if target not in self._compiled:
            runtime._get(target)  # export (and quantize) exactly as the runtime does
            names = fpn_tensor_names(runtime.onnx_paths[target])
            path = runtime.quantized[target].path if runtime.precision == "int8" else runtime.onnx_paths[target]
            self._compiled[target] = (self._compile(path, names), names)
        compiled, names = self._compiled[target]
        feeds = graph_feeds(images, img_shape, target)
        if runtime.name == "openvino":
            model, request = compiled
            request.infer(feeds)
            values = [request.get_tensor(model.output(name)).data.copy() for name in names]
        else:
            values = compiled.run(names, feeds)
        return [np.asarray(v, dtype=np.float32) for v in values]

    def _compile(self, path: Path, names: Sequence[str]):
        if self.runtime.name != "openvino":
            import onnx

            present = {o for node in onnx.load(str(path), load_external_data=False).graph.node for o in node.output}
            missing = [n for n in names if n not in present]
            if missing:
                raise FeatureTapUnavailable(f"{path}: the FPN tensor(s) {', '.join(missing)} are not in this graph")
        try:
            return self.runtime._compile(path, extra_outputs=names)
        except RuntimeError as err:  # OpenVINO: an unknown tensor name
            raise FeatureTapUnavailable(f"{path}: cannot add the FPN outputs: {str(err).splitlines()[0]}") from None


def feature_tap(runtime: Runtime) -> FeatureTap:
    """The runtime's tap; raises :class:`FeatureTapUnavailable` (one line) where there is none."""
    return FeatureTap(runtime)


def compare_features(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """Per level: (cosine similarity, relative error ``||candidate - reference|| / ||reference||``),
    computed in float64 over the whole tensor."""
    result = []
    for want, got in zip(reference, candidate):
        want = np.asarray(want, np.float64).ravel()
        got = np.asarray(got, np.float64).ravel()
        if want.shape != got.shape:
            raise MaskbenchError(f"feature shapes differ: {want.shape} vs {got.shape}")
        norms = np.linalg.norm(want) * np.linalg.norm(got)
        cosine = float(want @ got / norms) if norms > 0 else float(np.array_equal(want, got))
        reference_norm = np.linalg.norm(want)
        error = float(np.linalg.norm(got - want) / reference_norm) if reference_norm > 0 else float(
            np.linalg.norm(got))
        result.append((cosine, error))
    return result
