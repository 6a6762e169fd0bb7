"""The neck's output tensor names in an exported graph: what a graph runtime's feature tap adds
as extra outputs (:meth:`.exported.ExportedGraphRuntime.feature_tap`), by the rule of the
graph's family (its entry's ``feature_rule``): Mask R-CNN's FPN gives P2..P6 (``fpn_convs`` plus
a max-pool, :func:`fpn_tensor_names`), RTMDet-Ins' PAFPN P3..P5 (``out_convs``,
:func:`pafpn_tensor_names`)."""

from __future__ import annotations

import re
from pathlib import Path

from ..pipeline.graph_io import graph_family
from ..zoo import MASK_RCNN, RTMDET_INS, locate
from .base import FeatureTapUnavailable

FPN_LEVELS = MASK_RCNN.feature_levels
_FPN_CONV = re.compile(r"^(?:/model)?/neck/fpn_convs\.(\d+)/")
_PAFPN_CONV = re.compile(r"^(?:/model)?/neck/out_convs\.(\d+)/")
PAFPN_LEVELS = RTMDET_INS.feature_levels
_NECK = re.compile(r"^(?:/model)?/neck/")
_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})


def feature_tensor_names(onnx_path: Path | str) -> list[str]:
    """The neck outputs' tensor names, by the rule of the graph's family (from its metadata)."""
    return locate(graph_family(onnx_path).feature_rule)(onnx_path)


def _onnx_nodes(onnx_path: Path | str):
    """The graph's nodes without quantization's Q/DQ pairs, and a function following a tensor
    back through those pairs to its source."""
    import onnx

    graph_nodes = onnx.load(str(onnx_path), load_external_data=False).graph.node
    through_qdq = {n.output[0]: n.input[0] for n in graph_nodes if n.op_type in _QDQ}

    def source(tensor: str) -> str:  # through the Q/DQ pairs a QDQ-quantized graph inserts
        while tensor in through_qdq:
            tensor = through_qdq[tensor]
        return tensor

    return [n for n in graph_nodes if n.op_type not in _QDQ], source


def pafpn_tensor_names(onnx_path: Path | str) -> list[str]:
    """RTMDet-Ins: each ``/neck/out_convs.<i>/`` scope's last node is level i, nothing pooled."""
    nodes, _ = _onnx_nodes(onnx_path)
    pafpn = _last_in_scopes(nodes, _PAFPN_CONV)
    if len(pafpn) != len(PAFPN_LEVELS) or sorted(pafpn) != list(range(len(pafpn))):
        raise FeatureTapUnavailable(f"{onnx_path}: found {len(pafpn)} PAFPN output(s), expected "
                                    f"{len(PAFPN_LEVELS)} (/neck/out_convs.0-2)")
    return [pafpn[i] for i in sorted(pafpn)]


def fpn_tensor_names(onnx_path: Path | str) -> list[str]:
    """Mask R-CNN: the ONNX tensor names of P2..P6 in an exported graph.

    The TorchScript exporter names nodes by module scope: each ``/neck/fpn_convs.<i>/`` scope's
    last node (quantization's Q/DQ nodes aside) makes level ``i``; the extra levels are the
    neck's ``MaxPool`` nodes, each on the level before it."""
    nodes, source = _onnx_nodes(onnx_path)
    last = _last_in_scopes(nodes, _FPN_CONV)
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


def _last_in_scopes(nodes, pattern: re.Pattern) -> dict[int, str]:
    """Scope index -> output of the last node whose name matches ``pattern``."""
    last: dict[int, str] = {}
    for node in nodes:
        match = pattern.match(node.name)
        if match:
            last[int(match.group(1))] = node.output[0]
    return last


def projector_tensor_names(onnx_path: Path | str) -> list[str]:
    """RF-DETR-Seg: the ``/backbone.0/projector/`` scope's last node is its one level (P4)."""
    nodes, _ = _onnx_nodes(onnx_path)
    last = [node.output[0] for node in nodes if "/backbone.0/projector/" in node.name]
    if not last:
        raise FeatureTapUnavailable(f"{onnx_path}: no /backbone.0/projector/ node, expected RF-DETR-Seg's projector")
    return last[-1:]
