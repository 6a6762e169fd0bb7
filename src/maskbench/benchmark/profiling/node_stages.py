"""Each node of the exported graph -> the network stage it belongs to, and the names the graph
runtimes report back to those nodes.

Every ONNX node gets one of its family's stages by the family's rule (its entry's ``stage_rule``).
A runtime's profiler reports its own node names (see the backends' ``node_profiler``): both
runtimes keep the ONNX node names, decorated (OpenVINO: ``/backbone/conv1/Conv/WithoutBiases``,
``.../Relu/fq_output_0``, reorders named ``<parent>_<layout>_<layout>_<child>``; ONNX Runtime:
node or output-tensor names with suffixes ``_nchwc``, ``_token_12``, ``_QuantizeLinear``,
``fused ...``). :meth:`StageIndex.lookup` tries a name as it is, then without trailing ``/part``
components, then cut at each ``_`` (longest prefix first, then longest suffix), against the
ONNX node names and tensor names. Nodes the runtimes create themselves
(``ConvolutionBackpropData_2795``, ``ReorderInput_token_7``) have no ONNX name: the backend's
profiler places them by their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...pipeline.graph_io import graph_family
from ...utils.packages import require_package
from ...zoo import locate

# Module scopes in the exported node names (``/backbone/layer1/...``, ``/model/neck/...``):
# the first path component found here gives the stage.
SCOPES = {
    "backbone": "backbone+fpn", "neck": "backbone+fpn",
    "rpn_head": "rpn",
    "bbox_roi_extractor": "box_head", "bbox_head": "box_head",
    "mask_roi_extractor": "mask_head", "mask_head": "mask_head",
}
ROI_POOLING_OPS = ("RoiAlign",)
_FIRST = "backbone+fpn"  # where nodes before any scoped one go


def scope_stage(name: str) -> str | None:
    """The stage of a node name that carries a module scope, else None."""
    if not name.startswith("/"):
        return None
    for part in name.split("/")[1:-1]:
        if part in SCOPES:
            return SCOPES[part]
    return None


@dataclass
class StageIndex:
    """ONNX node name -> stage and tensor name -> stage (of the node producing it; a graph
    input: of its first consumer), with the lookup of names as runtimes decorate them."""

    by_node: dict[str, str]
    by_tensor: dict[str, str]

    def _exact(self, name: str) -> str | None:
        return self.by_node.get(name) or self.by_tensor.get(name)

    def _path(self, name: str) -> str | None:
        """``name`` or a ``/``-prefix of it (OpenVINO appends ``/WithoutBiases``, ``/fq_output_0``)."""
        while name:
            stage = self._exact(name)
            if stage is not None:
                return stage
            cut = name.rfind("/")
            if cut <= 0:
                return None
            name = name[:cut]
        return None

    def lookup(self, name: str) -> str | None:
        """The stage of a node name as a runtime reports it, or None."""
        name = name.strip()
        if name.startswith("fused "):
            name = name[len("fused "):]
        stage = self._path(name)
        if stage is not None:
            return stage
        cuts = [i for i, char in enumerate(name) if char == "_"]
        for i in reversed(cuts):  # longest prefix first: "/Gather_107_abcd_acdb_..." -> "/Gather_107"
            if i >= 3:
                stage = self._path(name[:i])
                if stage is not None:
                    return stage
        for i in cuts:  # then longest suffix: "..._acdb_abcd_/Gather_68" -> "/Gather_68"
            if len(name) - i - 1 >= 3:
                stage = self._path(name[i + 1:])
                if stage is not None:
                    return stage
        return None


def stage_index(onnx_path: Path | str) -> StageIndex:
    """:func:`node_stages` plus the stage of every tensor (for names derived from tensors), by
    the rule of the graph's family (its entry's ``stage_rule``; the family is in the file's
    metadata, written by the export)."""
    onnx = require_package("onnx", "graph stages")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    nodes = list(graph.node)
    keys = [_node_key(node, i) for i, node in enumerate(nodes)]
    family = graph_family(onnx_path)
    stages = locate(family.stage_rule)(nodes, {output.name for output in graph.output})
    by_node = dict(zip(keys, stages))
    by_tensor: dict[str, str] = {}
    for node, stage in zip(nodes, stages):
        for output in node.output:
            if output:
                by_tensor[output] = stage
    for node, stage in zip(nodes, stages):  # graph inputs: the stage of their first consumer
        for name in node.input:
            if name and name not in by_tensor:
                by_tensor[name] = stage
    return StageIndex(by_node, by_tensor)


def node_stages(onnx_path: Path | str) -> dict[str, str]:
    """Every node of a Mask R-CNN graph -> one of its stages (nodes without a name are
    keyed by their first output).

    The rule, in the graph's node order (the tracer's order: the order the Python code ran):

    1. A node whose name carries a module scope takes its stage (:data:`SCOPES`: ``backbone``
       and ``neck`` -> backbone+fpn, ``rpn_head`` -> rpn, ``bbox_head`` -> box_head,
       ``mask_head`` -> mask_head).
    2. A ``RoiAlign`` node takes the stage of the first scoped node it feeds (the box head's or
       the mask head's pooling).
    3. Any other node (the code outside modules: anchors, box decoding, TopK, NMS, the FPN level
       of each RoI, the detection selection, the label gather and sigmoid after the mask head)
       takes the stage of the last node of rules 1-2 before it: proposal selection -> rpn,
       detection selection -> box_head, the tail after the mask head -> mask_head; nodes before
       the first such node (the exporter's leading ``Identity`` copies of shared weights) take
       the stage of their first consumer.
    4. RoI pooling belongs to the head it feeds, including the code that prepares it (RoIs with
       their batch index, each RoI's FPN level): a node of rule 3 whose consumers all lie in one
       head's pooling (nodes after a ``RoiAlign`` of rule 2, before that head, or nodes of this
       rule) joins that head. The proposals themselves also feed the box decoding, so they stay
       in rpn; the detections are also graph outputs, so they stay in box_head.
    """
    return stage_index(onnx_path).by_node


def _node_key(node, index: int) -> str:
    return node.name or (node.output[0] if node.output and node.output[0] else f"#{index}")


def two_stage_stages(nodes, graph_outputs: set[str]) -> list[str]:
    """Mask R-CNN's stage rule (its family entry's ``stage_rule``): :func:`node_stages`' rules 1-4."""
    count = len(nodes)
    producers: dict[str, int] = {}
    consumers: list[list[int]] = [[] for _ in range(count)]
    for i, node in enumerate(nodes):
        for output in node.output:
            if output:
                producers[output] = i
    for i, node in enumerate(nodes):
        for name in node.input:
            if name in producers:
                consumers[producers[name]].append(i)

    scoped = [scope_stage(node.name) for node in nodes]
    anchors: list[str | None] = list(scoped)
    for i, node in enumerate(nodes):  # rule 2: the first scoped stage downstream of a RoiAlign
        if node.op_type in ROI_POOLING_OPS:
            anchors[i] = _first_scoped_downstream(i, consumers, scoped)
    stages: list[str | None] = [None] * count
    pooling = [False] * count  # rule 4 membership
    current, current_is_pooling = None, False
    for i in range(count):  # rules 1-3
        if anchors[i] is not None:
            current, current_is_pooling = anchors[i], nodes[i].op_type in ROI_POOLING_OPS
            stages[i], pooling[i] = current, current_is_pooling
        elif current is not None:
            stages[i], pooling[i] = current, current_is_pooling
    for i in range(count):  # the leading nodes: their first consumer's stage
        if stages[i] is None:
            later = [stages[j] for j in sorted(consumers[i]) if stages[j] is not None]
            stages[i] = later[0] if later else _FIRST
    for i in reversed(range(count)):  # rule 4, consumers before producers
        if anchors[i] is not None or pooling[i] or not consumers[i]:
            continue
        if any(output in graph_outputs for output in nodes[i].output):
            continue
        heads = {stages[j] for j in consumers[i] if pooling[j]}
        if len(heads) == 1 and all(pooling[j] for j in consumers[i]):
            stages[i], pooling[i] = heads.pop(), True
    return [stage or _FIRST for stage in stages]


def _first_scoped_downstream(start: int, consumers: list[list[int]], scoped: list[str | None]) -> str | None:
    """The stage of the earliest (in node order) scoped node reachable from ``start``."""
    seen, frontier, found = {start}, [start], []
    while frontier:
        i = frontier.pop()
        for j in consumers[i]:
            if j in seen:
                continue
            seen.add(j)
            if scoped[j] is not None:
                found.append(j)
            else:
                frontier.append(j)
    return scoped[min(found)] if found else None


def one_stage_stages(nodes, graph_outputs: set[str]) -> list[str]:
    """RTMDet-Ins' stage rule (its family entry's ``stage_rule``), in the node order of its graph
    (``export/graph_rtmdet.py``): backbone and neck -> backbone+fpn; the head's scope (towers,
    predictions, prototypes) -> dense_head; the code after it -> select, up to the first
    ``MatMul`` (the per-instance mask convolutions as matrix products) -> mask_head from there
    on. Leading unscoped nodes take the backbone's stage."""
    stages, current = [], "backbone+fpn"
    for node in nodes:
        parts = node.name.split("/")[1:-1] if node.name.startswith("/") else []
        if "backbone" in parts or "neck" in parts:
            current = "backbone+fpn"
        elif "bbox_head" in parts:
            current = "dense_head"
        elif current == "dense_head":
            current = "select"
        if current == "select" and node.op_type == "MatMul":
            current = "mask_head"
        stages.append(current)
    return stages


_QUERY_SCOPES = {"projector": "projector", "backbone.0": "backbone", "transformer": "decoder",
                 "class_embed": "decoder", "bbox_embed": "decoder", "segmentation_head": "mask_head"}


def query_stages(nodes, graph_outputs: set[str]) -> list[str]:
    """RF-DETR-Seg's stage rule (``export/graph_rfdetr.py``): the ViT (``backbone.0``) ->
    backbone, its ``projector`` -> projector, the ``transformer`` and the class and box heads ->
    decoder, the ``segmentation_head`` -> mask_head; unscoped nodes take the stage before them
    (box reparametrisation: decoder), and after the mask head they are the top-k -> select."""
    stages, current = [], "backbone"
    for node in nodes:
        parts = node.name.split("/")[1:-1] if node.name.startswith("/") else []
        scoped = next((_QUERY_SCOPES[part] for part in parts if part in _QUERY_SCOPES), None)
        if "projector" in parts:
            scoped = "projector"
        if scoped is not None:
            current = scoped
        elif current == "mask_head":
            current = "select"
        stages.append(current)
    return stages
