"""`maskbench predict` end to end on a folder mixing good and bad images: one line per bad file,
the others processed, COCO files and overlays written; plus the `zoo` command."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from maskbench.cli.main import main
from maskbench.zoo import MODELS


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, front_frame):
    folder = tmp_path_factory.mktemp("mixed")
    small = cv2.resize(front_frame, (400, 225))
    Image.fromarray(small).save(folder / "good.jpg", quality=90)
    (folder / "empty.jpg").write_bytes(b"")
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.png").write_text("not an image\n")
    Image.fromarray(small[:, :, 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([small, np.full(small.shape[:2], 128, np.uint8)])).save(folder / "rgba.png")
    cv2.imwrite(str(folder / "deep16.png"), (small[:, :, ::-1].astype(np.uint16) * 257))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(small).save(folder / "rotated.jpg", exif=exif)
    Image.new("1", (12_000, 9_000)).save(folder / "huge.png")  # 108 MP, tiny file
    return folder


def test_predict_reports_bad_files_and_processes_the_rest(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", "--model", "r50", "--images", str(mixed_folder), "--out", str(out),
                 "--input-size", "320x192"])
    assert code == 0
    err = capsys.readouterr().err
    images = {Path_name(i["file_name"]): i for i in json.loads((out / "images.json").read_text())["images"]}
    bad = {"empty.jpg", "truncated.jpg", "notes.png", "huge.png"}
    for name, record in images.items():
        if name in bad:
            assert record.get("error") and name in record["error"] and "\n" not in record["error"]
            assert name in err
        else:
            assert not record.get("error"), record
    assert images["rotated.jpg"]["width"] == 225 and images["rotated.jpg"]["height"] == 400
    results = json.loads((out / "results.json").read_text())
    per_image = {}
    for entry in results:
        per_image[entry["image_id"]] = per_image.get(entry["image_id"], 0) + 1
        assert entry["segmentation"]["counts"] and entry["category_name"]
    good_ids = {r["id"] for n, r in images.items() if n not in bad}
    assert set(per_image) == good_ids and all(n == 100 for n in per_image.values())
    assert len(list((out / "overlays").glob("*.png"))) == len(good_ids)
    info = json.loads((out / "images.json").read_text())["info"]
    assert "random" in info["weights"]


def Path_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def test_zoo_lists_every_model(capsys):
    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert all(m.name in listing for m in MODELS)


def test_unknown_model_fails_with_one_line(capsys):
    assert main(["zoo", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model 'nope'") and "\n" not in err
