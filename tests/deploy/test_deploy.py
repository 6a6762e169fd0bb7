"""The torch-free bundle (issue 17): what ``maskbench.deploy`` gives equals the full install's
runtime on the same frame; running it loads no torch; each refusal is one line.

Bundles are built once per module (random weights, small inputs): r50 stretch 320x192 for
ONNX Runtime and OpenVINO (one ONNX export), RTMDet-Ins tiny keep-ratio (640x640 padded),
RF-DETR-Seg nano on OpenVINO (312x312, its float resize and query masks in numpy)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import maskbench.deploy
from maskbench.deploy.__main__ import main as deploy_main
from maskbench.pipeline.manifest import MANIFEST_FILE, BundleError
from maskbench.utils.errors import RuntimeNotInstalled
from maskbench.utils.names import ResizeMode

SRC = Path(__file__).resolve().parents[2] / "src"


def _build(root: Path, frame, model: str, runtime: str, mode: ResizeMode, size):
    from maskbench.export.bundle import write_bundle
    from maskbench.export.onnx_export import ExportTarget
    from maskbench.predict.predictor import load_predictor
    from maskbench.runtimes.registry import get_runtime

    predictor = load_predictor(model, "random", mode, size, frame)
    predictor.runtime = get_runtime(runtime, predictor.loaded, mode=mode, cache_dir=root / "cache")
    tensor, meta = predictor.prepare(frame)
    predictor.runtime.prepare(tensor, meta.img_shape)
    folder = root / f"{model}-{runtime}"
    write_bundle(folder, predictor.runtime, ExportTarget.for_input(tensor, meta.img_shape, mode), size)
    return folder, predictor


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, front_frame):
    root = tmp_path_factory.mktemp("bundles")
    made = {}
    for model, runtime, mode, size in (("r50", "onnxruntime", ResizeMode.STRETCH, (320, 192)),
                                       ("r50", "openvino", ResizeMode.STRETCH, (320, 192)),
                                       ("rtmdet-ins-t", "onnxruntime", ResizeMode.KEEP_RATIO, None),
                                       ("rfdetr-seg-n", "openvino", ResizeMode.STRETCH, None)):
        made[(model, runtime)] = _build(root, front_frame, model, runtime, mode, size)
    return made


def _same(a, b) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)


@pytest.mark.parametrize("key", [("r50", "onnxruntime"), ("r50", "openvino"), ("rtmdet-ins-t", "onnxruntime"),
                                 ("rfdetr-seg-n", "openvino")])
def test_deployed_equals_full_install(bundles, front_frame, key):
    folder, predictor = bundles[key]
    model = maskbench.deploy.load(folder)
    _same(model(front_frame), predictor(front_frame))
    assert model.class_names[0] == "person"
    entries = model.coco_results(model(front_frame), 7)
    assert entries[0]["image_id"] == 7 and "counts" in entries[0]["segmentation"]


def test_runs_without_torch(bundles, tmp_path):
    folder, _ = bundles[("r50", "onnxruntime")]
    script = f"""
import sys
import maskbench.deploy
from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.deploy.__main__ import main
ref = find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0]
model = maskbench.deploy.load({str(folder)!r})
assert len(model(load_image(ref.path))) > 0
assert main([{str(folder)!r}, "--images", str(ref.path), "--out", {str(tmp_path / "out")!r}]) == 0
loaded = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
assert not loaded, loaded
"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    images = json.loads((tmp_path / "out" / "images.json").read_text())
    assert results and images["images"][0]["id"] == results[0]["image_id"] == 1


def test_rig_replay_on_the_robot_without_torch(bundles, tmp_path):
    """``python -m maskbench.deploy BUNDLE --rig``: the embedded front cameras at 12 Hz replayed
    through the bundle, one stream and two, into rig.json, with no torch loaded."""
    folder, _ = bundles[("r50", "onnxruntime")]
    out = tmp_path / "rig"
    script = f"""
import sys
from maskbench.deploy.__main__ import main
assert main([{str(folder)!r}, "--rig", "--duration", "2", "--config", "sync,streams:2", "--deadline", "60000",
             "--out", {str(out)!r}]) == 0
loaded = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
assert not loaded, loaded
"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((out / "rig.json").read_text())
    assert [r["executor"] for r in data["results"]] == ["sync", "streams:2"]
    assert data["cameras"] == ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT"]
    for result in data["results"]:
        overall = result["overall"]
        assert overall["offered"] >= 60 and 1 <= overall["processed"] <= overall["offered"]
    # the same run as records beside the benchmark's, which the report reads (docs/rig.md "Records")
    from maskbench.report.benchmark_report import write_report
    from maskbench.results.records import read_records
    from maskbench.results.rig_records import read_rig_records

    records = read_rig_records(out / "results.jsonl")
    assert [(r.config, r.runtime, r.cameras, r.rate_hz) for r in records] == [
        ("sync", "onnxruntime", 3, 12.0), ("streams:2", "onnxruntime", 3, 12.0)]
    assert records[0].processed_hz and records[0].machine["cpu"] and read_records(out / "results.jsonl") == []
    files = write_report([], tmp_path / "report", overlay_pair=None, rig_records=records)
    assert "| r50 | onnxruntime | fp32 | streams:2 |" in files.markdown.read_text() and len(files.load_plots) == 1


def _copy(folder: Path, dest: Path, link_artifact: bool = True) -> Path:
    """A copy of the bundle whose big artifact is a symlink (the tests that do not change it)."""
    dest.mkdir()
    for path in folder.iterdir():
        if link_artifact and path.name != MANIFEST_FILE:
            (dest / path.name).symlink_to(path)
        else:
            shutil.copyfile(path, dest / path.name)
    return dest


def _edit_manifest(folder: Path, reseal: bool = False, **changes) -> None:
    """``reseal``: seal the edited manifest again (as export would), to test what the seal does not cover."""
    from maskbench.pipeline.bundle_seal import seal_bundle
    from maskbench.pipeline.manifest import Manifest

    path = folder / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    if reseal:
        seal_bundle(folder, Manifest.from_dict(data))


def _refused(folder: Path, images: Path, out: Path, capsys, error=BundleError) -> str:
    with pytest.raises(error) as raised:
        maskbench.deploy.load(folder)(np.zeros((900, 1600, 3), np.uint8))
    assert "\n" not in str(raised.value)
    assert deploy_main([str(folder), "--images", str(images), "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: ") and "\n" not in line
    return line


@pytest.fixture
def frame_file():
    from maskbench.data.sources import embedded_nuscenes, find_images

    return find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path


def test_tampered_artifact(bundles, tmp_path, capsys, frame_file):
    folder = _copy(bundles[("r50", "onnxruntime")][0], tmp_path / "b", link_artifact=False)
    artifact = next(p for p in folder.iterdir() if p.suffix == ".onnx")
    with open(artifact, "r+b") as file:
        file.seek(-10, 2)
        file.write(b"tampered!!")
    assert "sha256" in _refused(folder, frame_file, tmp_path / "out", capsys)


def test_other_format_version(bundles, tmp_path, capsys, frame_file):
    folder = _copy(bundles[("r50", "onnxruntime")][0], tmp_path / "b")
    _edit_manifest(folder, format_version=99)
    assert "format version 99" in _refused(folder, frame_file, tmp_path / "out", capsys)


def test_not_a_bundle(tmp_path, capsys, frame_file):
    (tmp_path / "empty").mkdir()
    assert "not a maskbench bundle" in _refused(tmp_path / "empty", frame_file, tmp_path / "out", capsys)


def test_runtime_version_mismatch(bundles, tmp_path, capsys, frame_file, monkeypatch):
    folder, _ = bundles[("r50", "openvino")]
    monkeypatch.setattr("maskbench.deploy.engines.installed_version", lambda module: "1999.1.0")
    line = _refused(folder, frame_file, tmp_path / "out", capsys)
    assert "1999.1.0" in line and "pip install" in line and "re-export" in line


def test_missing_runtime(bundles, tmp_path, capsys, frame_file, monkeypatch):
    folder, _ = bundles[("r50", "onnxruntime")]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    line = _refused(folder, frame_file, tmp_path / "out", capsys, RuntimeNotInstalled)
    assert 'pip install "maskbench[deploy]" "onnxruntime==' in line


def test_wrong_input_shape(bundles, tmp_path, capsys, frame_file):
    """A keep-ratio graph meets a frame that pads to another size: refused naming both shapes.
    (Made by reading the r50 320x192 graph's manifest as keep-ratio at the default scale: a
    1600x900 frame then pads to 1344x768.)"""
    folder = _copy(bundles[("r50", "onnxruntime")][0], tmp_path / "b")
    _edit_manifest(folder, reseal=True, mode="keep_ratio", input_size=None, img_shape=None)
    line = _refused(folder, frame_file, tmp_path / "out", capsys)
    assert "1344x768" in line and "320x192" in line and "--keep-ratio" in line


def test_a_signed_bundle_loads_and_predicts_with_its_trusted_key(bundles, tmp_path, frame_file):
    """Signed as ``export --sign`` signs (``seal_bundle`` with the key); the robot's checks pass
    and it predicts (the same artifact as the unsigned bundle, whose detections are tested equal
    to the full install's above). Refusals: tests/deploy/test_bundle_trust.py."""
    pytest.importorskip("cryptography")
    from maskbench.pipeline.bundle_keys import load_private_key, new_key_pair
    from maskbench.pipeline.bundle_seal import seal_bundle
    from maskbench.pipeline.manifest import Manifest

    folder = _copy(bundles[("r50", "onnxruntime")][0], tmp_path / "b")
    private, public = new_key_pair(tmp_path / "keys")
    seal_bundle(folder, Manifest.read(folder), load_private_key(private))
    assert maskbench.deploy.load(folder, trusted_keys=[public]).manifest.model == "mask-rcnn_r50_fpn_1x_coco"
    assert deploy_main([str(folder), "--images", str(frame_file), "--out", str(tmp_path / "out"),
                        "--trusted-key", str(public)]) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())
