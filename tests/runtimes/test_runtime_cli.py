"""`maskbench export`, `predict --runtime` and `check-conversion` end to end on one small frame.

All three build the same random weights (calibrated on the same frame at 320x192), so the ONNX
file `export` writes into the cache is the one `predict` and `check-conversion` then use.
"""

from __future__ import annotations

import json

import onnx
import pytest

from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes, find_images


@pytest.fixture(scope="module")
def frame_file():
    return find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("maskbench-cache")


@pytest.fixture
def env(monkeypatch, cache):
    monkeypatch.setenv("MASKBENCH_CACHE", str(cache))
    return cache


def test_export_openvino_writes_onnx_and_ir_and_runs(env, frame_file, capsys):
    out = env / "onnx"
    code = main(["export", "--model", "r50", "--runtime", "openvino", "--input-size", "320x192",
                 "--images", str(frame_file), "--out", str(out), "--bundle", str(env / "bundle")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    (onnx_file,) = out.glob("r50_stretch_320x192_*.onnx")
    manifest = json.loads((env / "bundle" / "manifest.json").read_text())  # --bundle: the file compiled
    assert manifest["artifact"] == onnx_file.name and manifest["runtime"] == "openvino"
    assert (env / "bundle" / onnx_file.name).read_bytes() == onnx_file.read_bytes()
    assert onnx_file.with_suffix(".xml").is_file() and onnx_file.with_suffix(".bin").is_file()
    assert "openvino (fp32, cpu" in printed and "100 detections" in printed
    proto = onnx.load(str(onnx_file), load_external_data=False)
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "mask_probs"]


def test_predict_with_onnxruntime_reuses_the_export(env, frame_file, tmp_path, capsys):
    before = sorted(p.name for p in (env / "onnx").glob("*.onnx"))
    out = tmp_path / "pred"
    code = main(["predict", "--model", "r50", "--runtime", "onnxruntime", "--images", str(frame_file),
                 "--input-size", "320x192", "--out", str(out), "--no-overlays"])
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in (env / "onnx").glob("*.onnx")) == before, "the exported file was reused"
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 100
    info = json.loads((out / "images.json").read_text())["info"]
    assert info["runtime"].startswith("onnxruntime (fp32, cpu")


def test_check_conversion_prints_a_table_and_writes_json(env, frame_file, tmp_path, capsys):
    out = tmp_path / "check.json"
    code = main(["check-conversion", "--model", "r50", "--runtime", "onnxruntime", "--images", str(frame_file),
                 "--input-size", "320x192", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "matched" in printed and "100/100" in printed
    payload = json.loads(out.read_text())
    (row,) = payload["rows"]
    assert row["runtime"] == "onnxruntime" and row["matched"] == 100 and row["agrees"] is True
    info = payload["info"]  # maskbench.utils.machine.describe_environment, as benchmark records keep it
    assert info["packages"]["torch"] and (info["packages"].get("onnxruntime") or info["packages"]["onnxruntime-gpu"])
    assert info["runtime_threads"] >= 1 and info["cpu"] and info["model"] == "r50"
