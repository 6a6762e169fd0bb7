"""A family registered from a test module (``toy_family.py``: its entry, its rows and its code)
runs through the commands a user runs, in their own processes as a user would: predict, export,
check-conversion and a benchmark job with per-stage timing. Nothing in maskbench names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MASKBENCH_FAMILIES"] = "toy_family"
    env["MASKBENCH_CACHE"] = str(tmp_path_factory.mktemp("toy-cache"))
    return env


def maskbench(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "maskbench.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_toy_family_is_in_the_zoo_only_when_its_module_is_named(toy_env):
    assert "toy-s" in maskbench(toy_env, "zoo")
    without = {k: v for k, v in toy_env.items() if k != "MASKBENCH_FAMILIES"}
    assert "toy-s" not in maskbench(without, "zoo")


def test_predict_export_and_check_conversion(toy_env, tmp_path):
    maskbench(toy_env, "predict", "--model", "toy-s", "--cameras", "CAM_FRONT", "--out", str(tmp_path / "p"),
              "--no-overlays")
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    assert len(results) == 100 and all(r["segmentation"]["counts"] for r in results)
    assert len({r["category_id"] for r in results}) > 1

    maskbench(toy_env, "export", "--model", "toy-s", "--runtime", "onnx", "--cameras", "CAM_FRONT",
              "--out", str(tmp_path / "e"))
    import onnx

    (exported,) = (tmp_path / "e").glob("*.onnx")
    props = {p.key: p.value for p in onnx.load(str(exported), load_external_data=False).metadata_props}
    assert props["maskbench.family"] == "toy" and "mask_probs (D,28,28)" in props["maskbench.outputs"]

    out = maskbench(toy_env, "check-conversion", "--model", "toy-s", "--runtimes", "onnxruntime,openvino",
                    "--cameras", "CAM_FRONT", "--out", str(tmp_path / "c.json"))
    rows = [line.split() for line in out.splitlines() if line.startswith("toy-s ")]
    assert [row[1] for row in rows] == ["onnxruntime", "openvino"] and all(row[-1] == "yes" for row in rows)
    assert all(float(row[4]) > 0.999 for row in rows)  # the toy's one feature level, tapped by its rule


def test_a_benchmark_job_with_the_familys_stages(toy_env, tmp_path):
    maskbench(toy_env, "benchmark", "--models", "toy-s", "--runtimes", "openvino", "--warmup", "0", "--repeat", "1",
              "--stages", "--cameras", "CAM_FRONT", "--out", str(tmp_path / "b"))
    (record,) = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["model"] == "toy-s_coco"
    assert {"backbone+fpn", "toy_head"} <= set(record["stages"])
    assert "toy_head" in (tmp_path / "b" / "report.md").read_text()
