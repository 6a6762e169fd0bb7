"""FLOPs counted from ONNX graphs (maskbench.export.flops): exact counts on hand-built graphs,
the data-dependent rows after NMS, and a real export against torch's own counter."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from maskbench.export.flops import GraphFlops, count_flops


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(a, n) for n, a in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _zeros(*shape):
    return np.zeros(shape, np.float32)


def test_each_counted_op_by_hand():
    nodes = [
        # grouped, strided conv: (1,4,8,8) * W(6, 4/2, 3, 3) -> (1,6,4,4): 6*2*9 MACs at 16 positions
        helper.make_node("Conv", ["x", "wc", "bc"], ["c"], group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
        # transposed: W(C_in 4, C_out 3, 2, 2) over the 5x5 input positions
        helper.make_node("ConvTranspose", ["t_in", "wt"], ["t"], strides=[2, 2]),
        # broadcast batch: (2,1,3,5) @ (4,5,7) -> (2,4,3,7)
        helper.make_node("MatMul", ["a", "b"], ["m"]),
        # Gemm with transB: (3,5) @ (7,5)^T, C not counted
        helper.make_node("Gemm", ["g_in", "wg", "bg"], ["g"], transB=1),
        # not counted: elementwise, activation, pooling
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Add", ["m", "m"], ["s"]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2]),
    ]
    model = _model(nodes, [_input("x", [1, 4, 8, 8]), _input("t_in", [1, 4, 5, 5]), _input("a", [2, 1, 3, 5]),
                           _input("g_in", [3, 5])],
                   [_input(n, None) for n in ("r", "t", "s", "g", "p")],
                   [("wc", _zeros(6, 2, 3, 3)), ("bc", _zeros(6)), ("wt", _zeros(4, 3, 2, 2)), ("b", _zeros(4, 5, 7)),
                    ("wg", _zeros(7, 5)), ("bg", _zeros(7))])
    flops = count_flops(model)
    expected = {"Conv": 2 * 6 * 2 * 9 * 16, "ConvTranspose": 2 * 4 * 3 * 4 * 25, "MatMul": 2 * 2 * 4 * 3 * 5 * 7,
                "Gemm": 2 * 3 * 7 * 5}
    assert dict(flops.by_op_type) == expected
    assert flops.total == sum(expected.values()) and flops.unresolved == ()
    assert GraphFlops.from_dict(flops.to_dict()) == GraphFlops(flops.total, flops.by_op_type, ())


def _nms_chain(prefix: str, boxes: str, scores: str, features: str):
    """NMS -> kept indices -> the kept rows of ``features``: a data-dependent row count."""
    return [
        helper.make_node("NonMaxSuppression", [boxes, scores, "max_out", "iou"], [f"{prefix}_sel"]),
        helper.make_node("Gather", [f"{prefix}_sel", "two"], [f"{prefix}_idx"], axis=1),
        helper.make_node("Gather", [features, f"{prefix}_idx"], [f"{prefix}_rows"], axis=0),
    ]


def test_rows_after_each_nms_take_their_count():
    """Two NMS in a row (as Mask R-CNN's proposals, then detections): a product after the first
    gets the first count, after the second the second; without counts it is named, not counted."""
    nodes = [
        *_nms_chain("first", "boxes", "scores", "features"),
        helper.make_node("MatMul", ["first_rows", "w1"], ["h1"]),  # (D1, 16) @ (16, 8)
        helper.make_node("Gather", ["flat_boxes", "first_idx"], ["kept_boxes"], axis=0),
        helper.make_node("Unsqueeze", ["kept_boxes", "zero"], ["boxes2"]),
        helper.make_node("ReduceMax", ["h1", "one"], ["score_rows"], keepdims=0),
        helper.make_node("Reshape", ["score_rows", "score_shape"], ["scores2"]),
        *_nms_chain("second", "boxes2", "scores2", "h1"),
        helper.make_node("MatMul", ["second_rows", "w2"], ["h2"]),  # (D2, 8) @ (8, 4)
    ]
    model = _model(nodes, [_input("boxes", [1, 50, 4]), _input("scores", [1, 1, 50]), _input("features", [50, 16]),
                           _input("flat_boxes", [50, 4])],
                   [_input("h2", None)],
                   [("w1", _zeros(16, 8)), ("w2", _zeros(8, 4)), ("max_out", np.array([50], np.int64)),
                    ("iou", np.array([0.5], np.float32)), ("two", np.array(2, np.int64)),
                    ("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
                    ("score_shape", np.array([1, 1, -1], np.int64))])
    counted = count_flops(model, [30, 7])
    assert [(n.flops, n.instances) for n in counted.nodes] == [(2 * 30 * 16 * 8, 30), (2 * 7 * 8 * 4, 7)]
    assert counted.total == 2 * 30 * 16 * 8 + 2 * 7 * 8 * 4 and counted.unresolved == ()
    uncounted = count_flops(model)
    assert uncounted.total == 0 and len(uncounted.unresolved) == 2


@pytest.mark.filterwarnings("ignore")
def test_an_exported_rtmdet_counts_what_torch_counts(rtmdet_t):
    """RTMDet-Ins-t at 320x192 (calibrated random weights, 100 detections): the graph's count is
    within 10 % of torch's FlopCounterMode on the eager model (the same rule: matrix products
    and convolutions at 2 FLOPs per multiply-add), and the mask head's rows are the 100."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    loaded, tensor, meta, onnx_path = rtmdet_t
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        (raw,) = loaded.model(tensor, [meta.img_shape])
    assert raw.boxes.shape[0] == 100
    counted = count_flops(onnx_path, [100])
    assert counted.unresolved == ()
    assert {n.instances for n in counted.nodes} == {None, 100}
    assert counted.total == pytest.approx(counter.get_total_flops(), rel=0.10)
    assert 1e9 < counted.total < 1e11  # the order of magnitude: GFLOPs, not MFLOPs or TFLOPs


@pytest.mark.filterwarnings("ignore")
def test_an_exported_rfdetr_has_every_shape_known(tmp_path):
    """RF-DETR-Seg N (312x312, its parity weights): the decoder's shapes survive the trace (no
    node left out for an unknown size), the graph has no NMS (the model says so), and its count is
    within 10 % of torch's FlopCounterMode on the eager model."""
    torch = pytest.importorskip("torch")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from maskbench.data.frames import load_frames
    from maskbench.export.calibration import calibrated_random_model
    from maskbench.export.onnx_export import ExportTarget, export_onnx
    from maskbench.models.inputs import preprocess
    from maskbench.pipeline.preprocess import ResizeMode

    front = load_frames(cameras=["CAM_FRONT"])[0]
    loaded = calibrated_random_model("rfdetr-seg-n", [front], ResizeMode.STRETCH, None)
    tensor, meta = preprocess(front.image, ResizeMode.STRETCH, None, loaded.spec.input_format)
    assert loaded.model.rows_after_nms() == ()
    loaded.model.requires_grad_(False)  # FlopCounterMode's module hooks want no leaf that needs a gradient
    # attention as plain matrix products: FlopCounterMode has no formula for the CPU's fused kernel
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loaded.model(tensor, [meta.img_shape])
    path = export_onnx(loaded, ExportTarget.for_input(tensor, meta.img_shape, ResizeMode.STRETCH), cache_dir=tmp_path)
    counted = count_flops(path)
    assert counted.unresolved == ()
    assert counted.total == pytest.approx(counter.get_total_flops(), rel=0.10)
