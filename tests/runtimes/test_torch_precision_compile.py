"""The torch runtimes' reduced precision and torch.compile on a small r50 (128x64 input, 100
proposals, 20 detections: seconds instead of minutes on 2 cores).

Reduced precision is tested for its plumbing, not its accuracy: the dense stages compute in
fp16/bf16, box decoding, NMS and RoIAlign get float32, outputs are float32, and the caller's
model is untouched. Accuracy cannot be judged on random weights: calibrated random networks
amplify rounding about 100x (measured on r50 at 320x192: 1e-3 relative noise on the input
moves FPN features by 10-20%, fp16-rounded weights alone by 4-8%), so fp16/bf16 change most
detections of a random-weight model; the conversion check with official weights is the test
of accuracy (see verify/conversion_check.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import get_runtime
from maskbench.runtimes.torch_ import model_for
from maskbench.runtimes.torch_compile import TorchCompileRuntime
from maskbench.verify.conversion_check import check_conversion

SIZE = (128, 64)
DETECTIONS = 20


@pytest.fixture(scope="module")
def small_r50():
    frames = [f for f in load_frames() if f.camera == "CAM_FRONT"]
    loaded = calibrated_random_model("r50", frames, ResizeMode.STRETCH, SIZE)
    model = loaded.model
    model.proposal_config = replace(model.proposal_config, max_per_img=100)
    model.detection_config = replace(model.detection_config, max_per_img=DETECTIONS, min_candidates=200)
    tensor, meta = preprocess(frames[0].image, ResizeMode.STRETCH, SIZE, loaded.spec.input_format)
    return loaded, frames, tensor, meta.img_shape


def _dtypes_seen(model):
    """Output dtype of the first backbone conv and the features' dtype entering RoIAlign."""
    seen = {}

    def conv_output(module, inputs, output):
        seen["conv"] = output.dtype

    def roi_align_input(module, args):
        seen["roi_align_features"] = args[0][0].dtype

    model.backbone.conv1.register_forward_hook(conv_output)
    model.roi_head.bbox_roi_extractor.register_forward_pre_hook(roi_align_input)
    return seen


def _assert_valid_float32_detections(raw, img_shape):
    assert (raw.boxes.dtype, raw.scores.dtype, raw.masks.dtype, raw.labels.dtype) == (
        torch.float32, torch.float32, torch.float32, torch.int64)
    assert raw.boxes.shape == (DETECTIONS, 4) and raw.masks.shape == (DETECTIONS, 28, 28)
    height, width = img_shape
    assert raw.boxes.min() >= 0 and (raw.boxes[:, 2] <= width).all() and (raw.boxes[:, 3] <= height).all()
    assert torch.all(raw.scores[:-1] >= raw.scores[1:]) and raw.scores.min() > 0
    assert raw.masks.min() >= 0 and raw.masks.max() <= 1


@pytest.mark.parametrize("precision,conv_dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_reduced_precision_runs_dense_stages_only(small_r50, precision, conv_dtype):
    loaded, _, tensor, img_shape = small_r50
    before = loaded.model(tensor, [img_shape])[0]
    if precision == "bf16":
        runtime = get_runtime("torch", loaded, device="cpu", precision="bf16")
        model = runtime.model
    else:  # the runtime refuses fp16 on the CPU (test_precision_registry); the same model, built directly
        model = model_for(loaded.model, "cpu", "fp16")
        runtime = lambda images, shape: model(images, [shape])[0]  # noqa: E731
    seen = _dtypes_seen(model)
    raw = runtime(tensor, img_shape)
    assert seen == {"conv": conv_dtype, "roi_align_features": torch.float32}
    _assert_valid_float32_detections(raw, img_shape)
    assert not torch.equal(raw.boxes, before.boxes), "the reduced precision changed nothing: was it applied?"
    # The caller's model is untouched: fp32, its own methods, the same answers.
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert "extract_features" not in vars(loaded.model) and "forward" not in vars(loaded.model.rpn_head)
    after = loaded.model(tensor, [img_shape])[0]
    assert torch.equal(after.boxes, before.boxes) and torch.equal(after.masks, before.masks)


def test_torch_compile_wiring_gives_eager_detections(small_r50):
    """Fast case: dynamo captures the compiled stages (aot_eager backend: no code generation),
    the rest stays eager, and the detections are eager's."""
    loaded, frames, _, _ = small_r50
    runtime = TorchCompileRuntime(loaded, device="cpu", backend="aot_eager")
    assert runtime.compile_mode == "default" and "aot_eager" in runtime.describe()
    (row,) = check_conversion(loaded, runtime, frames, ResizeMode.STRETCH, SIZE, warmup=False)
    assert row.matched == row.reference_count == DETECTIONS and row.agrees, row
    assert "extract_features" not in vars(loaded.model), "the caller's model was not compiled"


@pytest.mark.slow
def test_torch_compile_inductor_gives_eager_detections(small_r50):
    """inductor on the CPU (C++ code generation: ~2 minutes for r50 on 2 cores)."""
    loaded, frames, _, _ = small_r50
    runtime = get_runtime("torch-compile", loaded, device="cpu")
    assert runtime.backend == "inductor"
    (row,) = check_conversion(loaded, runtime, frames, ResizeMode.STRETCH, SIZE, warmup=False)
    print(f"inductor: {row.matched}/{row.reference_count} matched, {row.close_pairs} close, "
          f"box {row.max_box_diff:.2e} px, score {row.max_score_diff:.1e}")
    assert row.matched == row.reference_count == DETECTIONS and row.agrees, row
