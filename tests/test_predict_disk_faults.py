"""`maskbench predict` on a full or read-only --out: one line, exit code 2, and every frame
predicted kept in a valid results.json. A stand-in predictor replaces the model (no network
is built), so each test takes a fraction of a second."""

import errno
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from disk_faults import READ_ONLY_WAYS, no_temporary_files, unwritable_folder
from PIL import Image

from maskbench.cli.main import main
from maskbench.pipeline.detections import Detections
from maskbench.utils.write_errors import megabytes


class StandInPredictor:
    """Two instances per frame (top-left and bottom-right quarter), as a model would return them."""

    loaded = SimpleNamespace(spec=SimpleNamespace(name="stand-in", alias="stand-in"), weights="random (stand-in)")
    runtime = None

    def __call__(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        masks = np.zeros((2, height, width), bool)
        masks[0, : height // 2, : width // 2] = masks[1, height // 2 :, width // 2 :] = True
        boxes = np.array([[0, 0, width / 2, height / 2], [width / 2, height / 2, width, height]], np.float32)
        return Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 2]), masks)


@pytest.fixture
def frames(tmp_path, monkeypatch):
    """Three 96x64 noise frames a.png, b.png, c.png; the stand-in predictor in place of the model."""
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in "abc":
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    monkeypatch.setattr("maskbench.predict.predictor.load_predictor", lambda *args, **kwargs: StandInPredictor())
    return folder


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    return line[line.index("error:"):]


def _results(out) -> tuple[dict[int, int], list[str]]:
    """Instances per image id in results.json (valid JSON), and the files images.json lists."""
    per_image: dict[int, int] = {}
    for entry in json.loads((out / "results.json").read_text()):
        per_image[entry["image_id"]] = per_image.get(entry["image_id"], 0) + 1
    images = [os.path.basename(i["file_name"]) for i in json.loads((out / "images.json").read_text())["images"]]
    return per_image, images


def test_a_full_disk_on_the_second_overlay_keeps_every_frame_predicted(frames, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real_save, saved = Image.Image.save, []

    def save(self, fp, *args, **kwargs):  # the second overlay finds the disk full half-way
        saved.append(fp)
        if len(saved) == 2:
            with open(fp, "wb") as partial:
                partial.write(b"\x89PNG\r\n\x1a\n half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    assert main(["predict", "--images", str(frames), "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err)
    overlay = (out / "overlays" / "0001_a.png").stat().st_size
    needed = 2 * overlay + 3 * len((out / "results.json").read_text()) / 2  # 2 overlays left, 3 frames' results
    assert line.startswith(f"error: no space left in {out / 'overlays'} (writing 0002_b.png, [Errno 28]): "
                           f"about {megabytes(round(needed))} MB free needed for 2 more overlay(s) and the results "
                           "of 3 frame(s), ")
    assert line.endswith("MB free now; results.json holds the 2 frame(s) predicted; free space there or choose "
                         "another --out")
    per_image, images = _results(out)
    assert per_image == {1: 2, 2: 2} and images == ["a.png", "b.png"]  # b's detections came before its overlay
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["0001_a.png"] and no_temporary_files(out)


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_a_read_only_out_is_one_line(frames, tmp_path, monkeypatch, capsys, how):
    with unwritable_folder(monkeypatch, tmp_path / "out", how) as out:
        assert main(["predict", "--images", str(frames), "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err)
    code = errno.EROFS if how == "EROFS" else errno.EACCES
    what = f"{out} is on a read-only file system" if how == "EROFS" else f"no permission to write in {out}"
    # the output folder's lock is the first thing written: refused before any frame is predicted
    assert line.startswith(f"error: {what} (writing .maskbench.lock, [Errno {code}]); ")
    assert line.endswith("choose another --out" if how != "EROFS" else "choose another --out (or remount it "
                         "read-write)")
    assert list(out.iterdir()) == []


def test_a_real_full_tmpfs(frames, small_tmpfs, capsys):
    big = frames / "big"
    big.mkdir()
    rng = np.random.default_rng(1)
    for name in "de":  # noise does not compress: each overlay ~1.3 MB, more than the 1 MB tmpfs
        Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(big / f"{name}.png")
    assert main(["predict", "--images", str(big), "--out", str(small_tmpfs)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"error: no space left in {small_tmpfs / 'overlays'} (writing 0001_d.png, [Errno 28]): "
                           "about ")
    assert "MB free needed for 2 more overlay(s) and the results of 2 frame(s)" in line
    assert "results.json holds the 1 frame(s) predicted" in line
    per_image, images = _results(small_tmpfs)
    assert per_image == {1: 2} and images == ["d.png"] and no_temporary_files(small_tmpfs)
