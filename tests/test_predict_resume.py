"""`maskbench predict` killed with SIGKILL resumes (issue 30): each frame is appended and fsynced
as it is done (OUT/shards), the rerun skips the frames done, says how many it kept, and the merged
results.json holds every frame exactly once, equal to an uninterrupted run's. A stand-in
predictor replaces the model (no network is built); the killed run is a real process that
SIGKILLs itself when asked for frame K, so the kill always falls at the same frame."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskbench.cli.main import main
from maskbench.pipeline.detections import Detections

SRC = Path(__file__).resolve().parents[1] / "src"
KILL_AT = 3  # of 4 frames: frames 1 and 2 are in the shard when it dies


class StandInPredictor:
    """One instance per frame, its score and box from the frame's pixels (so frames differ);
    with ``kill_at``, SIGKILLs its own process when called for that frame."""

    def __init__(self, kill_at: int | None = None):
        from types import SimpleNamespace

        self.loaded = SimpleNamespace(spec=SimpleNamespace(name="stand-in", alias="stand-in"), weights="stand-in")
        self.runtime, self.calls, self.kill_at = None, 0, kill_at

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        if self.calls == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        height, width = image.shape[:2]
        masks = np.zeros((1, height, width), bool)
        masks[0, : height // 2, : width // 3] = True
        score = float(image.mean()) / 255.0
        return Detections(np.array([[0, 0, width / 3, height / 2]], np.float32), np.array([score], np.float32),
                          np.array([int(image[0, 0, 0]) % 80]), masks)


KILLED = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import maskbench.predict.predictor
from maskbench.cli.main import main
from test_predict_resume import StandInPredictor
maskbench.predict.predictor.load_predictor = lambda *args, **kwargs: StandInPredictor(kill_at={KILL_AT})
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def frames(tmp_path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in "abcd":
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


@pytest.fixture
def stand_in(monkeypatch) -> list[StandInPredictor]:
    made: list[StandInPredictor] = []

    def load(*args, **kwargs):
        made.append(StandInPredictor())
        return made[-1]

    monkeypatch.setattr("maskbench.predict.predictor.load_predictor", load)
    return made


def _files(out: Path) -> tuple[list, list]:
    images = json.loads((out / "images.json").read_text())["images"]
    return json.loads((out / "results.json").read_text()), [(i["id"], Path(i["file_name"]).name) for i in images]


def test_a_killed_predict_resumes_and_ends_with_every_frame_once(frames, tmp_path, stand_in, capsys):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert main(["predict", "--images", str(frames), "--out", str(whole)]) == 0

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    killed = subprocess.run([sys.executable, "-c", KILLED, "predict", "--images", str(frames), "--out", str(resumed)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (resumed / "results.json").exists()  # killed before any merge: the shard is all there is
    lines = [json.loads(line) for part in sorted((resumed / "shards").glob("part-*.jsonl"))
             for line in part.read_text().splitlines()]
    assert [line["record"]["image_id"] for line in lines] == [1, 2]

    capsys.readouterr()
    assert main(["predict", "--images", str(frames), "--out", str(resumed)]) == 0
    out = capsys.readouterr().out
    assert "resuming: 2 of 4 frame(s) kept from an earlier run" in out
    assert "2 image(s) predicted, 2 kept from an earlier run" in out
    assert stand_in[-1].calls == 2  # frames 3 and 4 only
    results, images = _files(resumed)
    assert [entry["image_id"] for entry in results] == [1, 2, 3, 4]
    assert (results, images) == _files(whole)
    assert sorted(p.name for p in (resumed / "overlays").iterdir()) == sorted(
        p.name for p in (whole / "overlays").iterdir())


def test_a_finished_run_is_kept_and_another_run_starts_over(frames, tmp_path, stand_in, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--images", str(frames), "--out", str(out), "--no-overlays"]) == 0
    first = _files(out)
    assert main(["predict", "--images", str(frames), "--out", str(out), "--no-overlays"]) == 0
    assert stand_in[-1].calls == 0 and _files(out) == first
    assert "0 image(s) predicted, 4 kept from an earlier run" in capsys.readouterr().out
    assert main(["predict", "--images", str(frames), "--out", str(out), "--no-overlays", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "held the frames of another run (differs in: seed); starting over" in printed
    assert stand_in[-1].calls == 4 and _files(out) == first  # the stand-in ignores the seed
