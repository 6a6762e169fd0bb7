"""Every command with the second family (RTMDet-Ins tiny, random weights, one small frame):
predict (eager and ONNX Runtime, both preprocessing modes), export, check-conversion,
evaluate, benchmark (stage timings, records, report) and recommend over both families."""

from __future__ import annotations

import json

import onnx
import pytest
from pycocotools import mask as mask_utils

from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.results.records import OK, read_records

MODEL = "rtmdet-ins-t"


@pytest.fixture(scope="module")
def frame_file():
    return find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path


@pytest.fixture
def env(monkeypatch, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MASKBENCH_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("mode_args", [[], ["--keep-ratio"]], ids=["stretch-320x192", "keep-ratio-640"])
def test_predict_writes_100_masks_per_frame(frame_file, tmp_path, capsys, mode_args):
    out = tmp_path / "pred"
    size = [] if mode_args else ["--input-size", "320x192"]
    assert main(["predict", "--model", MODEL, "--images", str(frame_file), "--out", str(out), *size,
                 *mode_args]) == 0, capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 100
    areas = [mask_utils.area(r["segmentation"]) for r in results]
    assert sum(area > 0 for area in areas) >= 90  # masks on (nearly) all
    assert all(r["bbox"][2] >= 0 and r["bbox"][3] >= 0 for r in results)
    assert len(list((out / "overlays").glob("*.png"))) == 1


def test_export_check_conversion_and_predict_on_onnxruntime(env, frame_file, tmp_path, capsys):
    out = env / "onnx"
    assert main(["export", "--model", MODEL, "--runtime", "onnx", "--input-size", "320x192",
                 "--images", str(frame_file), "--out", str(out)]) == 0, capsys.readouterr()
    (onnx_file,) = out.glob(f"{MODEL}_stretch_320x192_*.onnx")
    proto = onnx.load(str(onnx_file), load_external_data=False)
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "mask_logits"]
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}
    from maskbench.benchmark.profiling.node_stages import node_stages

    stages = list(node_stages(onnx_file).values())  # what graph runtimes' --stages attribute time to
    assert set(stages) == {"backbone+fpn", "dense_head", "select", "mask_head"}
    order = ["backbone+fpn", "dense_head", "select", "mask_head"]
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in stages)

    check = tmp_path / "check.json"
    assert main(["check-conversion", "--model", MODEL, "--runtime", "onnxruntime", "--images", str(frame_file),
                 "--input-size", "320x192", "--out", str(check)]) == 0
    printed = capsys.readouterr().out
    (row,) = json.loads(check.read_text())["rows"]
    assert row["matched"] == 100 and row["agrees"] is True, printed

    pred = tmp_path / "pred"
    assert main(["predict", "--model", MODEL, "--runtime", "onnxruntime", "--images", str(frame_file),
                 "--input-size", "320x192", "--out", str(pred), "--no-overlays"]) == 0
    assert len(json.loads((pred / "results.json").read_text())) == 100


def test_evaluate_scores_random_weights(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", MODEL, "--weights", "random", "--input-size", "320x192",
                 "--max-images", "1", "--out", str(out), "--no-progress"]) == 0
    assert "meaningless" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images_scored"] == 1 and 0.0 <= metrics["metrics"]["mask"]["stats"]["AP"] <= 1.0


def test_benchmark_times_both_families_and_recommend_ranks_them(frame_file, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["benchmark", "--models", f"{MODEL},r50", "--runtimes", "torch", "--input-size", "256x160",
                 "--warmup", "0", "--repeat", "1", "--stages", "--images", str(frame_file), "--out", str(out)]) == 0
    records = {r.alias: r for r in read_records(out / "results.jsonl")}
    assert {alias: r.status for alias, r in records.items()} == {MODEL: OK, "r50": OK}
    rtmdet = records[MODEL]
    assert set(rtmdet.stages) == {"backbone+fpn", "dense_head", "select", "mask_head"}
    assert rtmdet.detections_per_image == 100 and rtmdet.input_hw == [160, 256]
    assert set(records["r50"].stages) == {"backbone+fpn", "rpn", "box_head", "mask_head"}
    report = (out / "report.md").read_text()
    assert MODEL in report and "300e" in report  # the training note groups RTMDet's recipe apart
    capsys.readouterr()
    assert main(["recommend", "--results", str(out / "results.jsonl")]) == 0
    assert capsys.readouterr().out.strip()
