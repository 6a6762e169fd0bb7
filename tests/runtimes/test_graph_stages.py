"""Per-stage times of the graph runtimes (benchmark/profiling/) on r50 at 320x192.

One export (calibrated random weights, 300 proposals as in test_int8.py to keep it short):
every ONNX node gets a stage by the documented rule, the names OpenVINO and ONNX Runtime report
map back to those nodes, and both runtimes' profiled stages are all > 0 and add up to about the
profiled call. int8 (NNCF IR, QDQ model) is not profiled here (quantizing costs ~20 s per
runtime); its node names are covered by the lookup test.
"""

from __future__ import annotations

import collections
from dataclasses import replace

import pytest

from maskbench.benchmark.profiling.graph_profile import OTHER, PROFILED_CALL, graph_stage_profile
from maskbench.benchmark.profiling.node_stages import node_stages, stage_index
from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.inputs import preprocess
from maskbench.models.mask_rcnn.model import MaskRCNN
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import get_runtime
from maskbench.zoo import stage_order

STAGES = MaskRCNN.STAGE_NAMES  # this file profiles r50's graph

SIZE = (320, 192)
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    front = load_frames(cameras=["CAM_FRONT"])[0]
    loaded = calibrated_random_model("r50", [front], ResizeMode.STRETCH, SIZE)
    loaded.model.proposal_config = replace(loaded.model.proposal_config, max_per_img=300)
    tensor, meta = preprocess(front.image, ResizeMode.STRETCH, SIZE, loaded.spec.input_format)
    cache = tmp_path_factory.mktemp("stages-cache")
    return loaded, front, tensor, meta, cache


def _runtime(name, setup):
    loaded, _, tensor, meta, cache = setup
    runtime = get_runtime(name, loaded, mode=ResizeMode.STRETCH, threads=2, cache_dir=cache)
    runtime.prepare(tensor, meta.img_shape)
    return runtime


@pytest.fixture(scope="module")
def openvino_runtime(setup):
    pytest.importorskip("openvino")
    return _runtime("openvino", setup)


@pytest.fixture(scope="module")
def onnx_path(openvino_runtime):
    (path,) = openvino_runtime.onnx_paths.values()
    return path


def test_stage_names_are_the_records(onnx_path):
    from maskbench.models.rfdetr.detector import RFDETRSegDetector
    from maskbench.models.rtmdet.model import RTMDetIns
    from maskbench.zoo import RFDETR_SEG

    # the records name every family's stages; where two families order the same names differently
    # (RTMDet-Ins selects before its mask head, RF-DETR-Seg after), the first registered one's wins
    RECORD_STAGES = stage_order()
    assert set(RECORD_STAGES) == set(STAGES) | set(RTMDetIns.STAGE_NAMES) | set(RFDETRSegDetector.STAGE_NAMES)
    for names in (STAGES, RTMDetIns.STAGE_NAMES):
        assert [n for n in RECORD_STAGES if n in names] == list(names)
    # a report of one family shows its own order (report/tables.stage_table passes the families shown)
    assert stage_order([RFDETR_SEG]) == RFDETRSegDetector.STAGE_NAMES == RFDETR_SEG.stage_names


def test_every_node_has_a_stage_by_the_rule(onnx_path):
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    stages = node_stages(onnx_path)
    assert set(stages) == {node.name for node in graph.node}
    assert set(stages.values()) == set(STAGES)
    by_op = collections.defaultdict(collections.Counter)
    for node in graph.node:
        by_op[node.op_type][stages[node.name]] += 1
    convs = by_op["Conv"]
    assert convs.most_common(1)[0][0] == "backbone+fpn"
    assert convs["backbone+fpn"] == 53 + 8  # ResNet-50's convolutions + FPN's lateral and output convs
    assert convs["rpn"] == 3 * 5 and convs["mask_head"] == 5 and convs["box_head"] == 0
    assert by_op["ConvTranspose"] == {"mask_head": 1}
    assert by_op["Gemm"] == {"box_head": 4}
    # proposal selection -> rpn, detection selection -> box_head; RoI pooling -> the head it feeds
    assert by_op["NonMaxSuppression"] == {"rpn": 1, "box_head": 1}
    assert by_op["RoiAlign"] == {"box_head": 4, "mask_head": 4}
    producer = {output: node.name for node in graph.node for output in node.output}
    outputs = {output.name: stages[producer[output.name]] for output in graph.output}
    assert outputs == {"boxes": "box_head", "scores": "box_head", "labels": "box_head", "mask_probs": "mask_head"}
    # the FPN level of each RoI (Log, Floor) belongs to the pooling it prepares
    assert by_op["Log"] == {"box_head": 1, "mask_head": 1}
    assert by_op["Sigmoid"]["rpn"] == 5 and by_op["Sigmoid"]["mask_head"] == 1


def test_runtime_names_map_back(onnx_path):
    index = stage_index(onnx_path)
    conv = "/backbone/layer1/layer1.0/conv1/Conv"
    assert index.lookup(conv) == "backbone+fpn"
    # OpenVINO: fused/decomposed nodes, NNCF's FakeQuantize, reorders between layers
    assert index.lookup(conv + "/WithoutBiases") == "backbone+fpn"
    assert index.lookup("/mask_head/convs.1/Relu/fq_output_0") == "mask_head"
    assert index.lookup("/Gather_107_abcd_acdb_/mask_head/convs.0/conv/Conv/WithoutBiases") in STAGES
    assert index.lookup("images_abcd_acdb_" + conv + "/WithoutBiases") == "backbone+fpn"
    # ONNX Runtime: NCHWc and QDQ names are output-tensor names with a suffix
    assert index.lookup("fused /bbox_head/shared_fcs.0/Gemm") == "box_head"
    assert index.lookup("/rpn_head/Relu_output_0_nchwc") == "rpn"
    assert index.lookup("/mask_head/convs.3/conv/Conv_token_440") == "mask_head"
    assert index.lookup("/bbox_head/Flatten_output_0_QuantizeLinear") == "box_head"
    assert index.lookup("images_QuantizeLinear") == "backbone+fpn"
    # names the runtimes make up have no ONNX node (placed by their neighbours instead)
    assert index.lookup("ConvolutionBackpropData_2795") is None
    assert index.lookup("ReorderInput_token_252") is None


def _check_profile(profile):
    assert profile.calls and all(len(values) == len(profile.calls) for values in profile.stages.values())
    for stage in STAGES:
        assert min(profile.stages[stage]) > 0, stage
    for total, wall in zip(profile.stage_sums(), profile.calls):
        assert 0.5 * wall < total < 1.5 * wall, (total, wall)
    fractions = profile.fractions()
    assert fractions["name"] > 0.8 and fractions["other"] < 0.02, fractions
    timings = profile.timings()
    assert set(timings) - {OTHER} == {*STAGES, PROFILED_CALL}
    print({k: f"{1000 * sum(v) / len(v):.1f} ms" for k, v in timings.items()}, fractions)


def test_openvino_stages(openvino_runtime, setup):
    _, _, tensor, meta, _ = setup
    _check_profile(graph_stage_profile(openvino_runtime, tensor, meta.img_shape, repeat=1))


def test_onnxruntime_stages(setup, onnx_path):
    pytest.importorskip("onnxruntime")
    runtime = _runtime("onnxruntime", setup)
    assert list(runtime.onnx_paths.values()) == [onnx_path]  # the cached export, not a second one
    _, _, tensor, meta, _ = setup
    _check_profile(graph_stage_profile(runtime, tensor, meta.img_shape, repeat=1))


def test_benchmark_worker_records_graph_stages_and_the_report_shows_them(openvino_runtime, setup):
    from maskbench.benchmark.worker import _stage_timings
    from maskbench.predict.predictor import Predictor
    from maskbench.report.tables import stage_table
    from maskbench.results.records import OK, BenchmarkRecord

    loaded, front, _, _, _ = setup
    predictor = Predictor(loaded, ResizeMode.STRETCH, SIZE, openvino_runtime)
    stages = _stage_timings(predictor, [front], 1, openvino_runtime)
    assert {*STAGES, PROFILED_CALL} <= set(stages) <= {*STAGES, OTHER, PROFILED_CALL}
    assert all(stats["count"] == 1 and stats["mean_ms"] > 0 for stats in stages.values())
    record = BenchmarkRecord(key="k", job={}, status=OK, runtime="openvino", precision="fp32", model="r50",
                             alias="r50", stages=stages, inference=stages[PROFILED_CALL])
    table = stage_table([record])
    assert table.headers[3:7] == [f"{stage} ms" for stage in STAGES]
    assert table.headers[-2:] == [f"{PROFILED_CALL} ms", "Inference ms (whole)"]
