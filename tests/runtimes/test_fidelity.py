"""Feature taps and fidelity against fp32 eager: r50 at 320x192 on one frame, random weights.

fp32 ONNX Runtime must reproduce eager's FPN outputs (cosine > 0.999, relative error < 1e-3)
and detections; int8 must show its rounding in the features (lower cosine). The FPN tensors are
found by name in the exported graph and in the int8 artifact; TensorRT is refused in one line.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import get_runtime
from maskbench.runtimes.base import FeatureTapUnavailable
from maskbench.runtimes.feature_names import FPN_LEVELS, fpn_tensor_names
from maskbench.runtimes.tensorrt_ import TensorRTRuntime
from maskbench.verify.check_row import CheckRow
from maskbench.verify.features import compare_features, feature_tap, reference_features
from maskbench.verify.fidelity import RANDOM_WEIGHTS_NOTE, measure_fidelity
from maskbench.verify.tables import format_table

SIZE = (320, 192)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    front = next(f for f in load_frames() if f.camera == "CAM_FRONT")
    loaded = calibrated_random_model("r50", [front], ResizeMode.STRETCH, SIZE)
    loaded.model.proposal_config = replace(loaded.model.proposal_config, max_per_img=300)  # faster RoI heads
    return loaded, front, tmp_path_factory.mktemp("fidelity-cache")


@pytest.fixture(scope="module")
def onnxruntime_fp32(setup):
    loaded, front, cache = setup
    runtime = get_runtime("onnxruntime", loaded, threads=2, cache_dir=cache)
    return runtime, measure_fidelity(runtime, loaded, [front.image], ResizeMode.STRETCH, SIZE)


def test_fp32_onnxruntime_reproduces_eager_features_and_detections(setup, onnxruntime_fp32):
    runtime, fidelity = onnxruntime_fp32
    assert fidelity.min_cosine > 0.999 and fidelity.max_rel_error < 1e-3
    assert list(fidelity.cosine_per_level) == list(FPN_LEVELS)
    assert fidelity.matched == fidelity.reference_count == 100  # fixed_count keeps 100 on random weights
    assert fidelity.mean_mask_iou > 0.99 and fidelity.area_weighted_mask_iou > 0.99
    assert fidelity.random_weights and fidelity.note == RANDOM_WEIGHTS_NOTE
    assert fidelity.as_dict()["max_rel_error"] == fidelity.max_rel_error
    (path,) = runtime.onnx_paths.values()
    names = fpn_tensor_names(path)
    assert names[:4] == [f"/neck/fpn_convs.{i}/conv/Conv_output_0" for i in range(4)]
    assert names[4] == "/neck/MaxPool_output_0"  # P6: the neck's max-pool of P5


def test_the_tap_gives_the_runtimes_own_features(setup):
    loaded, front, _ = setup
    tensor, meta = preprocess(front.image, ResizeMode.STRETCH, SIZE, loaded.spec.input_format)
    reference = reference_features(loaded, tensor)
    assert [f.shape[-2:] for f in reference] == [(48, 80), (24, 40), (12, 20), (6, 10), (3, 5)]
    eager = feature_tap(get_runtime("torch", loaded, device="cpu"))(tensor, meta.img_shape)
    assert compare_features(reference, eager) == [(pytest.approx(1.0), 0.0)] * 5  # the very same model
    bf16 = feature_tap(get_runtime("torch", loaded, device="cpu", precision="bf16"))(tensor, meta.img_shape)
    cosines = [c for c, _ in compare_features(reference, bf16)]
    assert all(f.dtype == np.float32 for f in bf16) and 0.5 < min(cosines) < 0.9999


def test_int8_features_are_the_quantized_ones(setup, onnxruntime_fp32):
    loaded, front, cache = setup
    runtime = get_runtime("onnxruntime", loaded, precision="int8", threads=2, cache_dir=cache,
                          calibration_images=[front.image])
    fidelity = measure_fidelity(runtime, loaded, [front.image], ResizeMode.STRETCH, SIZE)
    assert fidelity.min_cosine < onnxruntime_fp32[1].min_cosine - 0.01
    assert fidelity.max_rel_error > 10 * onnxruntime_fp32[1].max_rel_error
    (artifact,) = runtime.quantized.values()
    (fp32_path,) = runtime.onnx_paths.values()
    int8_outputs = {o for node in onnx.load(str(artifact.path)).graph.node for o in node.output}
    assert set(fpn_tensor_names(fp32_path)) <= int8_outputs  # the names survive quantization


def test_check_conversion_rows_carry_the_feature_columns():
    """The numbers come from the tap (tests/runtimes/test_conversion.py checks them for ONNX
    Runtime and OpenVINO on r50); here: the table, the JSON and a runtime without a tap."""
    row = CheckRow(model="r50", runtime="openvino", precision="int8", image="f.jpg", camera="CAM_FRONT",
                   mode="stretch", input_hw=(192, 320), reference_count=100, candidate_count=100, matched=10,
                   max_box_diff=3.0, max_score_diff=0.1, min_mask_iou=0.1, mean_mask_iou=0.27,
                   area_weighted_mask_iou=0.3, close_pairs=2, eager_ms=1.0, runtime_ms=1.0,
                   feature_cosine=0.6567, feature_rel_error=0.885)
    table = format_table([row])
    assert "feature cosine" in table and "0.6567" in table and "8.85e-01" in table
    assert row.as_dict()["feature_cosine"] == 0.6567
    no_tap = replace(row, runtime="tensorrt", feature_cosine=float("nan"), feature_rel_error=float("nan"))
    assert no_tap.as_dict()["feature_cosine"] is None and "  -  " in format_table([no_tap])


def test_tensorrt_has_no_feature_tap():
    with pytest.raises(FeatureTapUnavailable, match="feature taps are not available for tensorrt"):
        feature_tap(TensorRTRuntime(None, device="cuda:0"))  # refused at once: no model, no export


def test_compare_features_cosine_and_relative_error():
    a = np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 1, 2, 3)
    ((cosine, error),) = compare_features([a], [a * 1.1])
    assert cosine == pytest.approx(1.0) and error == pytest.approx(0.1)
    ((cosine, error),) = compare_features([a], [-a])
    assert cosine == pytest.approx(-1.0) and error == pytest.approx(2.0)
