"""RF-DETR-Seg through the commands a user runs, in their own processes: export to standard ONNX
(its metadata names the family and its masks), check-conversion on ONNX Runtime and OpenVINO
(the projector tapped by the family's feature rule), a benchmark job timing the family's own
stages, predict and evaluate (COCO's category ids), the rig's replay of its bundle, and the
one-line refusal of a keep-ratio input it does not have. Its parity with rfdetr:
tests/parity/test_parity_rfdetr.py and test_rfdetr_registry.py; its deployed bundle:
tests/deploy/test_deploy.py; recommend and report read its records as any other's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = "rfdetr-seg-n"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {**os.environ, "MASKBENCH_CACHE": str(tmp_path_factory.mktemp("rfdetr-cache"))}


def maskbench(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "maskbench.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == code, done.stderr[-2000:]
    return done


def test_export_is_standard_onnx_and_converts_on_both_runtimes(env, tmp_path):
    import onnx

    from maskbench.export.onnx_export import nonstandard_ops

    maskbench(env, "export", "--model", MODEL, "--runtime", "onnx", "--cameras", "CAM_FRONT",
              "--out", str(tmp_path / "e"))
    (exported,) = (tmp_path / "e").glob("*.onnx")
    proto = onnx.load(str(exported), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["maskbench.family"] == "rfdetr-seg" and "mask_logits (D,R/4,R/4)" in props["maskbench.outputs"]
    assert nonstandard_ops(exported) == []
    ops = {node.op_type for node in proto.graph.node}
    assert {"GridSample", "TopK"} <= ops  # deformable attention and the top-k, as standard operators

    out = maskbench(env, "check-conversion", "--model", MODEL, "--runtimes", "onnxruntime,openvino",
                    "--cameras", "CAM_FRONT", "--out", str(tmp_path / "c.json")).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith(f"{MODEL} ")]
    assert [row[1] for row in rows] == ["onnxruntime", "openvino"] and all(row[-1] == "yes" for row in rows)
    assert all(float(row[4]) > 0.9999 for row in rows)  # the projector's output, tapped by the family's rule


def test_a_benchmark_job_times_the_familys_stages(env, tmp_path):
    maskbench(env, "benchmark", "--models", MODEL, "--runtimes", "openvino", "--warmup", "0", "--repeat", "1",
              "--stages", "--cameras", "CAM_FRONT", "--out", str(tmp_path / "b"))
    (record,) = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["model"] == "rfdetr-seg-nano"
    assert {"backbone", "projector", "decoder", "mask_head", "select"} <= set(record["stages"])
    assert record["detections_per_image"] > 0 and record["zoo_box_ap"] is None and record["zoo_mask_ap"] == 40.3
    assert record["gflop"] == pytest.approx(45.3, abs=0.1)  # every matrix product of the graph counted
    header = next(line for line in (tmp_path / "b" / "report.md").read_text().splitlines() if "projector ms" in line)
    assert header.index("backbone ms") < header.index("projector ms") < header.index("select ms")


def test_keep_ratio_is_refused_in_one_line(env, tmp_path):
    done = maskbench(env, "predict", "--model", MODEL, "--keep-ratio", "--cameras", "CAM_FRONT",
                     "--out", str(tmp_path / "p"), code=2)
    line = done.stderr.strip().splitlines()[-1]
    assert "no keep-ratio mode" in line and "--keep-ratio" in line
    assert not Path(tmp_path / "p" / "results.json").exists()


def test_predict_then_evaluate_score_with_cocos_category_ids(env, tmp_path):
    from maskbench.data.coco_classes import COCO_CATEGORY_IDS

    maskbench(env, "predict", "--model", MODEL, "--cameras", "CAM_FRONT", "--out", str(tmp_path / "p"), "--no-overlays")
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    assert 0 < len(results) <= 100 and all(r["segmentation"]["counts"] for r in results)
    assert {r["category_id"] for r in results} <= set(COCO_CATEGORY_IDS)  # unused logit slots dropped

    maskbench(env, "evaluate", "--model", MODEL, "--max-images", "1", "--out", str(tmp_path / "e"), "--no-progress")
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["random_weights"] is True and metrics["images_scored"] == 1


def test_the_rig_replays_its_bundle(env, tmp_path):
    maskbench(env, "rig", "--model", MODEL, "--runtime", "openvino", "--duration", "2", "--config", "sync",
              "--deadline", "60000", "--out", str(tmp_path / "r"))
    data = json.loads((tmp_path / "r" / "rig.json").read_text())
    (result,) = data["results"]
    assert data["model"]["runtime"] == "openvino" and result["overall"]["processed"] >= 1


def test_int8_on_onnx_runtime_is_quantized_and_answers(env, tmp_path):
    """int8: NNCF-free ONNX Runtime quantization of the family's graph (QDQ pairs around its
    matrix products), run once on the frame with detections in COCO's classes."""
    import onnx

    done = maskbench(env, "export", "--model", MODEL, "--runtime", "onnxruntime", "--precision", "int8",
                     "--cameras", "CAM_FRONT", "--out", str(tmp_path / "q"))
    assert "int8" in done.stdout and " detections" in done.stdout
    (quantized,) = (tmp_path / "q").glob("*int8*.onnx")
    ops = [node.op_type for node in onnx.load(str(quantized), load_external_data=False).graph.node]
    assert ops.count("QuantizeLinear") >= 50 and "MatMul" in ops
