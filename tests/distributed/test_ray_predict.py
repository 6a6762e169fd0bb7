"""``--engine ray`` (issue 18) on a local Ray (2 CPUs, started once for the module): Ray's results
equal single-process predict's entry for entry, a bad image is reported and the rest go on, a
stopped run resumes without redoing or duplicating frames, a SIGKILLed actor loses and
duplicates nothing, evaluate scores the same; refusals are one line without starting Ray.

Small on purpose (CI runs the suite on 2 cores): RTMDet-Ins tiny, random weights, stretch
320x192, ONNX Runtime with 1 thread, 3 nuScenes frames plus one corrupt file; RF-DETR-Seg N
once (one actor), its results against predict's."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.distributed import ModelChoice, RayOptions, predict_on_ray
from maskbench.distributed.actor import TEST_DIR_ENV
from maskbench.utils.names import ResizeMode

MODEL, RUNTIME, SIZE = "rtmdet-ins-t", "onnxruntime", (320, 192)
CHOICE = ModelChoice(MODEL, runtime=RUNTIME, mode=ResizeMode.STRETCH, input_size=SIZE)
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A local Ray for the module; actors write their pids into the folder it yields."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    actors = tmp_path_factory.mktemp("actors")
    os.environ[TEST_DIR_ENV] = str(actors)  # before ray.init: the workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield actors
    ray.shutdown()
    del os.environ[TEST_DIR_ENV]


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    refs = find_images(embedded_nuscenes(), cameras=["CAM_FRONT", "CAM_BACK", "CAM_FRONT_LEFT"])
    for name, ref in zip(("a.jpg", "b.jpg", "d.jpg"), refs):
        shutil.copyfile(ref.path, folder / name)
    (folder / "c.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.fixture(scope="module")
def local(frames, tmp_path_factory) -> Path:
    from maskbench.predict.predictor import run_predict

    out = tmp_path_factory.mktemp("local")
    run_predict(MODEL, "random", frames, out, input_size=SIZE, overlays=False, runtime=RUNTIME, threads=1)
    return out


@pytest.fixture(scope="module")
def ray_run(ray_local, frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray")
    summary = predict_on_ray(CHOICE, frames, out, options=RayOptions(actors=2, batch_size=1, progress=False))
    return out, summary


def _read(out: Path) -> tuple[list, list]:
    images = json.loads((out / "images.json").read_text())["images"]
    return json.loads((out / "results.json").read_text()), images


def _same_as_local(out: Path, local: Path) -> None:
    results, images = _read(out)
    local_results, local_images = _read(local)
    assert results == local_results and len(results) > 0
    assert images == local_images
    assert [image["id"] for image in images] == [1, 2, 3, 4]  # every frame, once


def test_ray_equals_predict_and_reports_the_bad_image(ray_run, ray_local, local):
    out, summary = ray_run
    _same_as_local(out, local)
    assert summary.predicted == 3 and len(summary.errors) == 1 and "c.jpg" in summary.errors[0]
    assert sum(stats.frames for stats in summary.actors.values()) == 4
    assert not any(json.loads(pid.read_text())["torch"] for pid in ray_local.glob("pid-*")), "an actor imported torch"
    written = json.loads((out / "summary.json").read_text())
    assert written["frames"] == 4 and written["failed"] == 1 and written["frames_per_s"] > 0


def test_resume_predicts_only_the_missing_frames(ray_run, local, tmp_path):
    out = shutil.copytree(ray_run[0], tmp_path / "out")
    (out / "results.json").unlink()
    (out / "images.json").unlink()
    part = out / "shards" / "part-0001.jsonl"
    first = part.read_text().splitlines()[0]
    part.write_text(first + "\n" + '{"record": {"image_id": 2, "fil')  # a run stopped mid-write
    kept_ok = json.loads(first)["record"]["error"] is None
    options = RayOptions(actors=1, batch_size=2, progress=False)
    summary = predict_on_ray(CHOICE, _frames_of(ray_run), out, options=options)
    assert summary.resumed == int(kept_ok) and summary.predicted == 3 - int(kept_ok)
    _same_as_local(out, local)


def _frames_of(ray_run) -> Path:
    return Path(json.loads((ray_run[0] / "images.json").read_text())["images"][0]["file_name"]).parent


def test_sigkilled_actor_loses_and_duplicates_nothing(ray_run, ray_local, local, tmp_path):
    (ray_local / "kill-once").write_text("")
    before = set(ray_local.glob("pid-*"))
    summary = predict_on_ray(ray_run[0] / "bundle", _frames_of(ray_run), tmp_path / "out",
                             options=RayOptions(actors=1, batch_size=1, progress=False))
    assert list(ray_local.glob("killed-*")), "no actor was killed"
    assert len(set(ray_local.glob("pid-*")) - before) >= 2  # the killed actor and its restart
    assert summary.predicted == 3 and len(summary.errors) == 1
    _same_as_local(tmp_path / "out", local)


def test_evaluate_on_ray_scores_as_local(ray_local, tmp_path):
    common = ["evaluate", "--model", MODEL, "--input-size", "320x192", "--runtime", RUNTIME, "--max-images", "2",
              "--no-progress"]
    assert main([*common, "--threads", "1", "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--engine", "ray", "--actors", "1", "--out", str(tmp_path / "ray")]) == 0
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text())["metrics"] for name in ("local", "ray")]
    for scored in metrics:
        scored.pop("seconds")
    assert metrics[0] == metrics[1] and metrics[0]["num_results"] > 0
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("local", "ray")]
    assert results[0] == results[1]


@pytest.mark.parametrize(("argv", "expected"), [
    (["predict", "--engine", "ray"], "add --runtime onnxruntime or openvino"),
    (["predict", "--engine", "ray", "--runtime", "torch"], "add --runtime onnxruntime or openvino"),
    (["predict", "--actors", "2"], "--actors apply to --engine ray"),
    (["predict", "--engine", "ray", "--runtime", "openvino", "--threads", "2"], "--threads-per-actor"),
    (["evaluate", "--engine", "ray", "--runtime", "openvino", "--predictions", "r.json"], "drop --predictions"),
])
def test_refusals_are_one_line(argv, expected, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert expected in line and "\n" not in line


def test_missing_ray_is_one_line(monkeypatch, frames, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    assert main(["predict", "--engine", "ray", "--runtime", RUNTIME, "--images", str(frames),
                 "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert 'pip install "maskbench[ray]"' in line and "\n" not in line


def test_cli_without_ray_engine_imports_no_ray():
    script = ("import sys, maskbench, maskbench.cli.main; maskbench.cli.main.build_parser(); "
              "assert 'ray' not in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_rfdetr_on_ray_equals_predict(ray_local, frames, tmp_path):
    """The third family through Ray: RF-DETR-Seg N (its own 312x312 input, COCO's category ids)
    gives single-process predict's entries, the corrupt file reported in both."""
    from maskbench.predict.predictor import run_predict

    model = "rfdetr-seg-n"
    run_predict(model, "random", frames, tmp_path / "local", overlays=False, runtime=RUNTIME, threads=1)
    predict_on_ray(ModelChoice(model, runtime=RUNTIME), frames, tmp_path / "ray",
                   options=RayOptions(actors=1, batch_size=1, progress=False))
    _same_as_local(tmp_path / "ray", tmp_path / "local")
