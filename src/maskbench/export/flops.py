"""FLOPs of an exported graph, counted from its ONNX file (onnx + numpy only: no torch, no runtime),
so every row of a benchmark can say how far its latency is from what the machine can do.

The rule (the one fvcore and ``torch.utils.flop_counter`` follow, so the two counts compare):

- counted: the matrix products, ``Conv``, ``ConvTranspose``, ``MatMul``, ``Gemm`` and their
  integer forms (``ConvInteger``, ``QLinearConv``, ``MatMulInteger``, ``QLinearMatMul``), at
  2 FLOPs per multiply-add (for int8 these are integer operations, counted the same way);
  a bias or ``Gemm``'s ``C`` is not counted;
- not counted: everything else (elementwise, activations, normalisation, pooling, ``Resize``,
  ``RoiAlign``, ``NonMaxSuppression``, ``TopK``, shape arithmetic). In the detectors these are
  a few percent of the multiply-adds, and they run on other units than the matrix kernels the
  peak (:mod:`maskbench.benchmark.peak`) measures.

Shapes come from ONNX shape inference (with data propagation). The detection graphs have
data-dependent sizes: after a ``NonMaxSuppression`` the number of boxes is known only at run
time (see :mod:`.onnx_export`: outputs have ``D`` rows). A counted node whose leading axis
(Conv's batch, MatMul's first axis, Gemm's rows) is unknown gets ``instance_counts[k - 1]``,
where ``k`` is the number of NMS nodes upstream of it: for Mask R-CNN ``(1000, 100)`` (the RPN's
proposals at ``max_per_img``, then the 100 detections), for RTMDet-Ins ``(100,)``: the fixed
100 detections random weights give (``fixed_count``). With trained weights and fewer boxes
kept, this is an upper bound. A counted node with any other unknown size is not counted and is
named in :attr:`GraphFlops.unresolved`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnx import shape_inference

NMS = "NonMaxSuppression"
# op type -> (input index of the data, input index of the weights / second operand)
_CONV_INPUTS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3), "ConvTranspose": (0, 1)}
_MATMUL_INPUTS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "Gemm": (0, 1)}
COUNTED = frozenset(_CONV_INPUTS) | frozenset(_MATMUL_INPUTS)

Shape = list[int | None]  # None: a size shape inference could not fix


@dataclass(frozen=True)
class NodeFlops:
    name: str
    op_type: str
    flops: int
    instances: int | None = None  # the NMS-kept count used for its leading axis; None: static shape


@dataclass(frozen=True)
class GraphFlops:
    """FLOPs of one graph by the module's rule. ``instance_counts``: the row counts after each
    NMS that were used; ``unresolved``: counted-type nodes left out (a size unknown)."""

    total: int
    by_op_type: tuple[tuple[str, int], ...]
    instance_counts: tuple[int, ...]
    unresolved: tuple[str, ...] = ()
    nodes: tuple[NodeFlops, ...] = ()

    @property
    def gflop(self) -> float:
        return self.total / 1e9

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("nodes")  # per node: for inspection, not kept in caches or records
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GraphFlops:
        return cls(total=int(data["total"]), by_op_type=tuple((str(k), int(v)) for k, v in data["by_op_type"]),
                   instance_counts=tuple(int(c) for c in data["instance_counts"]),
                   unresolved=tuple(data.get("unresolved", ())))


def count_flops(model: onnx.ModelProto | str | Path, instance_counts: Sequence[int] = ()) -> GraphFlops:
    """FLOPs of ``model`` (a file or a loaded proto) by the module's rule; ``instance_counts``:
    the rows after the 1st, 2nd... ``NonMaxSuppression`` (see the module note)."""
    proto = onnx.load(str(model)) if isinstance(model, str | Path) else model
    inferred = shape_inference.infer_shapes(proto, data_prop=True)
    graph = inferred.graph
    shapes = _shapes(graph)
    depth: dict[str, int] = {}  # tensor -> number of NMS nodes upstream (the longest path)
    counts = tuple(int(c) for c in instance_counts)
    nodes: list[NodeFlops] = []
    unresolved: list[str] = []
    for node in graph.node:
        below = max((depth.get(name, 0) for name in node.input if name), default=0)
        here = below + (node.op_type == NMS)
        for name in node.output:
            depth[name] = here
        if node.op_type not in COUNTED:
            continue
        leading, others = _factors(node, shapes)
        instances = None
        if leading is None and 1 <= below <= len(counts):
            leading = instances = counts[below - 1]
        if leading is None or any(f is None for f in others):
            unresolved.append(node.name or node.op_type)
            continue
        flops = 2 * leading * math.prod(f for f in others if f is not None)
        nodes.append(NodeFlops(node.name, node.op_type, flops, instances))
    by_type: dict[str, int] = {}
    for item in nodes:
        by_type[item.op_type] = by_type.get(item.op_type, 0) + item.flops
    return GraphFlops(total=sum(by_type.values()), by_op_type=tuple(sorted(by_type.items())),
                      instance_counts=counts, unresolved=tuple(unresolved), nodes=tuple(nodes))


def _shapes(graph: onnx.GraphProto) -> dict[str, Shape | None]:
    """Every tensor's shape as far as inference fixed it (None: rank unknown)."""
    shapes: dict[str, Shape | None] = {init.name: list(init.dims) for init in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            shapes.setdefault(info.name, None)
            continue
        shapes[info.name] = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    for node in graph.node:  # Constant nodes: inference does not always list their outputs
        if node.op_type == "Constant" and node.output[0] not in shapes:
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)
    return shapes


def _first(*candidates: int | None) -> int | None:
    return next((c for c in candidates if c is not None), None)


def _at(shape: Shape | None, index: int) -> int | None:
    if shape is None or not -len(shape) <= index < len(shape):
        return None
    return shape[index]


def _factors(node: onnx.NodeProto, shapes: dict[str, Shape | None]) -> tuple[int | None, list[int | None]]:
    """(the leading axis, the other sizes) whose product is the node's multiply-adds."""
    def shape(index: int) -> Shape | None:
        return shapes.get(node.input[index]) if index < len(node.input) else None

    out = shapes.get(node.output[0])
    if node.op_type in _CONV_INPUTS:
        x_index, w_index = _CONV_INPUTS[node.op_type]
        x, w = shape(x_index), shape(w_index)
        if w is None or len(w) < 3:
            return None, [None]
        spatial = len(w) - 2
        kernel: list[int | None] = list(w[2:])
        if node.op_type == "ConvTranspose":  # W (C_in, C_out / groups, k...): over the input's positions
            positions = list(x[2:]) if x is not None and len(x) == spatial + 2 else [None]
            return _first(_at(x, 0), _at(out, 0)), [_first(w[0], _at(x, 1)), w[1], *kernel, *positions]
        positions = list(out[2:]) if out is not None and len(out) == spatial + 2 else [None]
        return _first(_at(x, 0), _at(out, 0)), [_first(w[0], _at(out, 1)), w[1], *kernel, *positions]
    a_index, b_index = _MATMUL_INPUTS[node.op_type]
    a, b = shape(a_index), shape(b_index)
    if a is None or b is None:
        return None, [None]
    if node.op_type == "Gemm":
        attrs = {attr.name: attr.i for attr in node.attribute}
        m, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
        k_b, n = (b[1], b[0]) if attrs.get("transB") else (b[0], b[1])
        return _first(m, _at(out, 0)), [_first(k, k_b), _first(n, _at(out, 1))]
    a2 = [1, *a] if len(a) == 1 else a  # numpy's matmul: a vector is one row / one column
    b2 = [*b, 1] if len(b) == 1 else b
    m, k, n = _first(a2[-2], _at(out, -2) if len(a) > 1 else 1), _first(a2[-1], b2[-2]), \
        _first(b2[-1], _at(out, -1) if len(b) > 1 else 1)
    batch = _batch_dims(a2[:-2], b2[:-2], out[:-2] if out is not None and len(a) > 1 and len(b) > 1 else None)
    if batch:
        return batch[0], [*batch[1:], m, k, n]
    return m, [k, n]


def _batch_dims(a: Shape, b: Shape, out: Shape | None) -> Shape:
    """MatMul's broadcast batch axes, from the output where known, else from the operands."""
    rank = max(len(a), len(b))
    one: Shape = [1]
    dims: Shape = []
    for index, (da, db) in enumerate(zip(one * (rank - len(a)) + a, one * (rank - len(b)) + b)):
        known_out = out[index] if out is not None and len(out) == rank else None
        if known_out is not None:
            dims.append(known_out)
        elif da is not None and db is not None:
            dims.append(max(da, db))
        elif (da or db or 1) > 1:  # one operand known and > 1: broadcasting keeps it
            dims.append(da or db)
        else:
            dims.append(None)
    return dims


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m maskbench.export.flops FILE.onnx [COUNT,COUNT]``: the count as JSON."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m maskbench.export.flops FILE.onnx [ROWS_AFTER_NMS_1,ROWS_AFTER_NMS_2]", file=sys.stderr)
        return 2
    counts = [int(c) for c in args[1].split(",")] if len(args) > 1 else []
    print(json.dumps(count_flops(args[0], counts).to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
