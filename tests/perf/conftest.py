"""One small real export shared by the tests of this folder: RTMDet-Ins-t at 320x192 with
calibrated random weights, in a cache folder of its own (MASKBENCH_CACHE for the session)."""

from __future__ import annotations

import pytest

SIZE = (320, 192)
MODEL = "rtmdet-ins-t"


@pytest.fixture(scope="session")
def perf_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("perf-cache")


@pytest.fixture(scope="session")
def rtmdet_t(perf_cache):
    pytest.importorskip("onnx")
    from maskbench.data.frames import load_frames
    from maskbench.export.calibration import calibrated_random_model
    from maskbench.export.onnx_export import ExportTarget, export_onnx
    from maskbench.models.inputs import preprocess
    from maskbench.pipeline.preprocess import ResizeMode

    front = load_frames(cameras=["CAM_FRONT"])[0]
    loaded = calibrated_random_model(MODEL, [front], ResizeMode.STRETCH, SIZE)
    tensor, meta = preprocess(front.image, ResizeMode.STRETCH, SIZE, loaded.spec.input_format)
    target = ExportTarget.for_input(tensor, meta.img_shape, ResizeMode.STRETCH)
    path = export_onnx(loaded, target, cache_dir=perf_cache / "onnx")
    return loaded, tensor, meta, path
