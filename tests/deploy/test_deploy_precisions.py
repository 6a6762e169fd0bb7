"""int8 and bf16 bundles (issue 17): the deployed model equals the full install's runtime in
that precision on the same frame, the int8 artifact travels with its companion files, and a
bundle whose precision this CPU cannot run natively is refused in one line.

r50 stretch 256x160, random weights calibrated (and int8-quantized) on the one front frame.
The bf16 test lets both sides compile with the bf16 hint whatever the CPU reports, so it gives
the same verdict on every CPU kind: where the CPU has no bf16, OpenVINO runs both in f32."""

from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest

import maskbench.deploy
from maskbench.pipeline.manifest import BundleError, Manifest
from maskbench.utils.names import ResizeMode

SIZE = (256, 160)
NNCF = pytest.mark.skipif(not importlib.util.find_spec("nncf"),
                          reason="nncf not installed (pip install 'maskbench[int8]')")


@pytest.fixture(scope="module")
def model(tmp_path_factory, front_frame):
    """The calibrated random r50, built once; each test puts its own runtime in front of it."""
    from maskbench.predict.predictor import load_predictor

    return load_predictor("r50", "random", ResizeMode.STRETCH, SIZE, front_frame), tmp_path_factory.mktemp("cache")


def _bundle(model, root, frame, runtime: str, precision: str):
    from maskbench.export.bundle import write_bundle
    from maskbench.export.onnx_export import ExportTarget
    from maskbench.predict.predictor import Predictor
    from maskbench.runtimes.registry import get_runtime

    shared, cache = model
    predictor = Predictor(shared.loaded, shared.mode, shared.input_size)
    predictor.runtime = get_runtime(runtime, predictor.loaded, precision=precision, threads=2,
                                    cache_dir=cache, calibration_images=[frame])
    tensor, meta = predictor.prepare(frame)
    predictor.runtime.prepare(tensor, meta.img_shape)
    folder = root / f"{runtime}-{precision}"
    write_bundle(folder, predictor.runtime, ExportTarget.for_input(tensor, meta.img_shape, ResizeMode.STRETCH), SIZE)
    return folder, predictor


def _same(a, b) -> None:
    assert len(a) == len(b) > 0
    for field in ("boxes", "scores", "labels", "masks"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@NNCF
def test_int8_bundle_equals_full_install(model, tmp_path, front_frame):
    """OpenVINO's int8 artifact is an IR (.xml and its .bin): the case with companion files.
    (ONNX Runtime's int8 artifact is one .onnx file, run by the same session code as fp32.)"""
    folder, predictor = _bundle(model, tmp_path, front_frame, "openvino", "int8")
    manifest = Manifest.read(folder)
    assert manifest.precision == "int8"
    (artifact,) = predictor.runtime.quantized.values()
    assert manifest.artifact == artifact.path.name  # the quantized file, not the fp32 export
    companions = [p.name for p in predictor.runtime.artifact_files()
                  if p != artifact.path and p.stem == artifact.path.stem]
    assert sorted(manifest.extra_files) == sorted(companions)
    assert any(name.endswith(".bin") for name in manifest.extra_files)  # the IR's weights
    for name in (manifest.artifact, *manifest.extra_files):
        assert (folder / name).is_file()
    _same(maskbench.deploy.load(folder)(front_frame), predictor(front_frame))


def test_bf16_bundle_equals_full_install(model, tmp_path, front_frame, monkeypatch):
    monkeypatch.setattr("maskbench.runtimes.openvino_.optimization_capabilities",
                        lambda core=None: ["FP32", "BF16", "INT8"])
    monkeypatch.setattr("maskbench.deploy.engines.missing_native_precision", lambda capabilities, precision: None)
    folder, predictor = _bundle(model, tmp_path, front_frame, "openvino", "bf16")
    assert Manifest.read(folder).precision == "bf16"
    _same(maskbench.deploy.load(folder)(front_frame), predictor(front_frame))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_precision_the_cpu_lacks_is_refused(tmp_path, monkeypatch, precision):
    """OpenVINO reports only FP32: the bundle is refused before compiling, naming the fix."""
    from maskbench.deploy import engines

    class Core:
        def get_property(self, device, name):
            assert name == "OPTIMIZATION_CAPABILITIES"
            return ["FP32", "BIN"]

        def compile_model(self, *args, **kwargs):
            raise AssertionError("compiled although the CPU cannot run the precision")

    fake = types.SimpleNamespace(Core=Core, __version__="2026.4.0")
    monkeypatch.setattr(engines, "import_runtime", lambda runtime, version=None: fake)
    with pytest.raises(BundleError) as raised:
        engines.open_engine("openvino", "2026.4.0", tmp_path / "model.xml", 2, precision, ["boxes"])
    line = str(raised.value)
    assert "\n" not in line and f"runs in {precision}" in line and "OpenVINO reports: FP32, BIN" in line
    assert "export an fp32 bundle" in line
