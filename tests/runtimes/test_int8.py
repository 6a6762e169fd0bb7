"""int8 on ONNX Runtime (static QDQ) and OpenVINO (NNCF): runs, keeps the data-dependent tail in
fp32, caches its quantized artifact by key, and is refused in one line where the CPU has no
int8 instructions. r50 at 256x160 with 300 proposals, calibrated on one frame: the point is
the plumbing; what int8 does to detections is in docs/precision.md."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from maskbench.cli.main import main
from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model, calibration_feeds, feeds_fingerprint
from maskbench.export.onnx_export import ExportTarget
from maskbench.export.quantize import (
    ONNXRUNTIME_DENSE_TYPES,
    OPENVINO_DENSE_TYPES,
    Quantizer,
    quantized_artifact,
    unshare_initializers,
)
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import PRECISIONS, RUNTIMES, cpu_int8, get_runtime
from maskbench.runtimes import cli as runtimes_cli
from maskbench.runtimes.openvino_ import require_native_int8
from maskbench.runtimes.registry import UnsupportedPrecisionError, require_runtime
from maskbench.utils.errors import RuntimeNotInstalled
from maskbench.verify.tolerances import TOLERANCES

SIZE = (256, 160)
INT8_RUNTIMES = ("onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("nncf"), reason="nncf not installed (pip install 'maskbench[int8]')")))


@pytest.fixture(scope="module")
def frames():
    return {frame.camera: frame for frame in load_frames()}


@pytest.fixture(scope="module")
def setup(frames, tmp_path_factory):
    front = frames["CAM_FRONT"]
    loaded = calibrated_random_model("r50", [front], ResizeMode.STRETCH, SIZE)
    loaded.model.proposal_config = replace(loaded.model.proposal_config, max_per_img=300)
    tensor, meta = preprocess(front.image, ResizeMode.STRETCH, SIZE, loaded.spec.input_format)
    return loaded, tensor, meta, tmp_path_factory.mktemp("int8-cache")


def _int8_runtime(name, setup, frames):
    loaded, tensor, meta, cache = setup
    runtime = get_runtime(name, loaded, precision="int8", threads=2, cache_dir=cache,
                          calibration_images=[frames["CAM_FRONT"].image])
    runtime.prepare(tensor, meta.img_shape)
    (artifact,) = runtime.quantized.values()
    return runtime, artifact


def _quantized_inputs(name: str, path: Path) -> set[tuple[str, str, int]]:
    """(op type, node name, input index) of every input the artifact at ``path`` feeds from a
    ``DequantizeLinear`` (ONNX Runtime) or a ``FakeQuantize`` (OpenVINO)."""
    if name == "onnxruntime":
        graph = onnx.load(str(path)).graph
        dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
        return {(node.op_type, node.name, index) for node in graph.node if node.op_type != "QuantizeLinear"
                for index, i in enumerate(node.input) if i in dequantized}
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return {(t.get_node().get_type_name(), t.get_node().get_friendly_name(), t.get_index())
            for op in model.get_ops() if op.get_type_name() == "FakeQuantize"
            for output in op.outputs() for t in output.get_target_inputs()}


TAIL_OPS = {"NonMaxSuppression", "TopK", "Softmax", "Sigmoid", "Exp", "Sqrt", "Log", "Gather", "GatherND", "Div",
            "Divide", "Mul", "Multiply", "Sub", "Subtract", "Output", "Result"}
PREDICTION_LAYERS = ("rpn_cls", "rpn_reg", "fc_cls", "fc_reg", "conv_logits")


@pytest.mark.parametrize("name", INT8_RUNTIMES)
def test_int8_runs_quantizes_dense_layers_only_and_is_cached(name, setup, frames):
    loaded, tensor, meta, _ = setup
    runtime, artifact = _int8_runtime(name, setup, frames)
    assert artifact.built and artifact.path.is_file() and artifact.key["calibration_frames"] == 1
    out = runtime(tensor, meta.img_shape)
    assert out.boxes.shape == (100, 4) and out.scores.shape == (100,) and out.masks.shape == (100, 28, 28)
    assert out.boxes.dtype == out.scores.dtype == out.masks.dtype == torch.float32
    assert out.labels.dtype == torch.int64
    assert "int8" in runtime.describe() and "AVX2" in runtime.describe()

    # Box decoding, NMS, top-k and the RoIs stay fp32; so do the prediction layers (scores, deltas).
    quantized = _quantized_inputs(name, artifact.path)
    assert not {q for q in quantized if q[0] in TAIL_OPS or (q[0] in ("RoiAlign", "ROIAlign") and q[2] == 1)}
    dense = set(ONNXRUNTIME_DENSE_TYPES) if name == "onnxruntime" else OPENVINO_DENSE_TYPES
    # ONNX Runtime: the weights' DequantizeLinear (input 1); OpenVINO: the activations' FakeQuantize
    # (NNCF stores the weights as int8 constants with a scale, not behind a FakeQuantize).
    dense_layers = {node for kind, node, index in quantized if kind in dense and index == (name == "onnxruntime")}
    assert len(dense_layers) >= 60 and not any(p in node for node in dense_layers for p in PREDICTION_LAYERS)

    # A second runtime with the same model and frames loads the artifact, untouched.
    stamps = [f.stat().st_mtime_ns for f in artifact.files]
    again, reused = _int8_runtime(name, setup, frames)
    assert not reused.built and reused.path == artifact.path and reused.key == artifact.key
    assert [f.stat().st_mtime_ns for f in artifact.files] == stamps
    assert np.allclose(again(tensor, meta.img_shape).scores.numpy(), out.scores.numpy(), atol=1e-6)


def _counting_quantizer(calls: list, version: str = "1.0") -> Quantizer:
    def build(onnx_path, feeds, out):
        calls.append(len(feeds))
        out.write_bytes(b"int8 of " + onnx_path.read_bytes())

    return Quantizer("stand-in", (".bin",), lambda: {"lib": version}, {"setting": 1}, build)


def test_cache_key_calibration_versions_and_tampering(tmp_path):
    fp32 = tmp_path / "model.onnx"
    fp32.write_bytes(b"fp32 graph")  # no maskbench key inside: the file's hash stands for it
    feeds = [{"images": np.zeros((1, 3, 4, 4), np.float32)}]
    calls: list = []
    first = quantized_artifact(_counting_quantizer(calls), fp32, feeds, feeds_fingerprint(feeds))
    assert first.built and first.path == tmp_path / "model_int8_stand-in.bin" and calls == [1]
    assert first.path.with_suffix(".json").is_file()
    assert not quantized_artifact(_counting_quantizer(calls), fp32, feeds, feeds_fingerprint(feeds)).built

    other = [{"images": np.ones((1, 3, 4, 4), np.float32)}] * 2  # other calibration frames
    assert quantized_artifact(_counting_quantizer(calls), fp32, other, feeds_fingerprint(other)).built
    assert quantized_artifact(_counting_quantizer(calls, "2.0"), fp32, other, feeds_fingerprint(other)).built
    fp32.write_bytes(b"another fp32 graph")  # another export
    assert quantized_artifact(_counting_quantizer(calls, "2.0"), fp32, other, feeds_fingerprint(other)).built
    first.path.write_bytes(b"truncated")  # an altered artifact is not trusted
    assert quantized_artifact(_counting_quantizer(calls, "2.0"), fp32, other, feeds_fingerprint(other)).built
    assert calls == [1, 2, 2, 2, 2]
    assert first.path.read_bytes() == b"int8 of another fp32 graph"


def test_calibration_frames_are_the_runtimes_inputs(frames):
    from maskbench.zoo import get_spec

    spec = get_spec("r50")
    image = frames["CAM_BACK"].image
    tensor, meta = preprocess(image, ResizeMode.STRETCH, SIZE, spec.input_format)
    stretch = ExportTarget.for_input(tensor, meta.img_shape, ResizeMode.STRETCH)
    (feed,) = calibration_feeds([image], stretch, spec.input_format)
    assert set(feed) == {"images"} and np.array_equal(feed["images"], tensor.numpy())

    tensor, meta = preprocess(image, ResizeMode.KEEP_RATIO, (320, 180), spec.input_format)
    keep_ratio = ExportTarget.for_input(tensor, meta.img_shape, ResizeMode.KEEP_RATIO)
    (feed,) = calibration_feeds([image], keep_ratio, spec.input_format)
    assert feed["images"].shape == tuple(tensor.shape) and list(feed["img_shape"]) == list(meta.img_shape)
    assert np.array_equal(feed["images"], tensor.numpy())
    other = calibration_feeds([frames["CAM_FRONT"].image], stretch, spec.input_format)
    assert feeds_fingerprint(other) != feeds_fingerprint(calibration_feeds([image], stretch,
                                                                           spec.input_format))


def test_unshared_initializers_let_biases_be_quantized():
    from onnx import TensorProto, helper, numpy_helper

    bias = numpy_helper.from_array(np.zeros(2, np.float32), "bias")
    weight = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Identity", ["bias"], ["bias2"]),
             helper.make_node("Conv", ["x", "w", "bias"], ["y1"]),
             helper.make_node("Conv", ["x", "w", "bias2"], ["y2"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y1", "y2")],
                              [bias, weight])
    proto = unshare_initializers(helper.make_model(graph))
    assert [n.op_type for n in proto.graph.node] == ["Conv", "Conv"]
    assert {t.name for t in proto.graph.initializer} == {"bias", "bias2", "w"}


def test_cpu_int8_instructions():
    assert cpu_int8.int8_instructions({"avx2", "avx512_vnni", "sse4_2"}) == ["AVX512-VNNI", "AVX2"]
    assert cpu_int8.int8_instructions({"sse4_2"}) == []
    assert cpu_int8.has_vnni({"avx_vnni", "avx2"}) and not cpu_int8.has_vnni({"avx2"})


def test_int8_refused_where_the_cpu_cannot_run_it(monkeypatch):
    monkeypatch.setattr(cpu_int8, "cpu_flags", lambda: {"sse4_2", "avx"})
    with pytest.raises(UnsupportedPrecisionError) as info:
        get_runtime("onnxruntime", None, precision="int8")
    assert "\n" not in str(info.value) and str(info.value).startswith("this CPU cannot run int8 natively")

    class Core:
        def get_property(self, device, name):
            return ["FP32", "BIN"]

    with pytest.raises(UnsupportedPrecisionError) as info:
        require_native_int8(Core())
    assert str(info.value) == ("this CPU cannot run int8 natively (OpenVINO reports: FP32, BIN); "
                               "use --precision fp32")
    monkeypatch.setattr("maskbench.runtimes.openvino_.optimization_capabilities", lambda core=None: ["FP32"])
    with pytest.raises(UnsupportedPrecisionError, match=r"OpenVINO reports: FP32\)"):
        require_runtime("openvino", "int8")


def test_openvino_int8_without_nncf_says_how_to_install(monkeypatch):
    monkeypatch.setattr("maskbench.runtimes.openvino_.optimization_capabilities", lambda core=None: ["FP32", "INT8"])
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(RuntimeNotInstalled) as info:
        require_runtime("openvino", "int8")
    assert "\n" not in str(info.value) and "pip install 'maskbench[int8]'" in str(info.value)


def test_registry_cli_and_tolerance_know_int8(capsys, tmp_path):
    assert "int8" in PRECISIONS and runtimes_cli.PRECISIONS == PRECISIONS
    assert {name for name, info in RUNTIMES.items() if "int8" in info.precisions} == {"onnxruntime", "openvino"}
    assert RUNTIMES["openvino"].precisions["int8"] == ("cpu",) == RUNTIMES["onnxruntime"].precisions["int8"]
    with pytest.raises(UnsupportedPrecisionError, match="int8 on cpu with: onnxruntime, openvino"):
        require_runtime("torch", "int8", "cpu")
    assert TOLERANCES["int8"].min_mean_mask_iou < TOLERANCES["fp32"].min_mean_mask_iou
    out = str(tmp_path / "out")  # a refused command still takes its --out folder's lock
    assert main(["export", "--model", "r50", "--precision", "int8", "--out", out]) == 2  # no model work
    err = capsys.readouterr().err
    assert "the ONNX file is always fp32" in err and "onnxruntime (int8)" in err
