"""The rig's ``batch`` configuration on a real model: a static-batch graph (``export --bundle
--batch N``) gives each image what the single-image graph gives, a bundle of it runs under
``BatchExecutor``, and what cannot be built is refused in one line before any model work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maskbench.cli.main import main
from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.pipeline.graph_io import ExportTarget, array_feeds, output_names, stack_feeds
from maskbench.utils.names import ResizeMode
from maskbench.zoo import get_spec, locate


@pytest.fixture(scope="module")
def left_frame() -> np.ndarray:
    return load_image(find_images(embedded_nuscenes(), cameras=["CAM_FRONT_LEFT"])[0].path)


def test_outputs_are_named_per_image_and_feeds_stack():
    spec = get_spec("rtmdet-ins-t")
    assert output_names(spec) == ["boxes", "scores", "labels", "mask_logits"]
    assert output_names(spec, 2) == ["boxes_0", "scores_0", "labels_0", "mask_logits_0",
                                     "boxes_1", "scores_1", "labels_1", "mask_logits_1"]
    keep_ratio = ExportTarget((8, 8), None)
    feeds = [array_feeds(np.full((1, 3, 8, 8), v, np.float32), (6 + v, 8), keep_ratio) for v in (0, 1)]
    stacked = stack_feeds(feeds)
    assert stacked["images"].shape == (2, 3, 8, 8) and stacked["images"][1].min() == 1
    np.testing.assert_array_equal(stacked["img_shape"], [[6, 8], [7, 8]])
    assert ExportTarget.for_input(np.zeros((3, 3, 8, 8)), (8, 8), ResizeMode.STRETCH).batch == 3


@pytest.mark.parametrize(("model", "mode", "size"), [("r50", ResizeMode.STRETCH, (256, 160)),
                                                     ("rtmdet-ins-t", ResizeMode.KEEP_RATIO, None),
                                                     ("rfdetr-seg-n", ResizeMode.STRETCH, None)])
def test_a_batch_graph_gives_each_image_what_the_single_image_graph_gives(model, mode, size, front_frame, left_frame):
    """Each family's graph (eager, float64: the verdict does not depend on the CPU's rounding):
    the dense network once on the batch, the selection per image, equal to one image at a time."""
    from maskbench.predict.predictor import load_predictor

    predictor = load_predictor(model, "random", mode, size, front_frame)
    network = predictor.loaded.model.double().eval()
    prepared = [predictor.prepare(frame) for frame in (front_frame, left_frame)]
    fixed = prepared[0][1].img_shape if mode is ResizeMode.STRETCH else None
    graph = locate(predictor.loaded.spec.family.graph)(network, fixed).eval()
    shapes = [torch.tensor(meta.img_shape, dtype=torch.int64) for _, meta in prepared]
    with torch.no_grad():
        batch = graph(torch.cat([t for t, _ in prepared]).double(), None if fixed else torch.stack(shapes))
        singles = [graph(t.double(), None if fixed else shape) for (t, _), shape in zip(prepared, shapes)]
    assert len(batch) == 8
    for index, single in enumerate(singles):
        for ours, theirs in zip(batch[4 * index:4 * index + 4], single):
            assert ours.shape == theirs.shape and ours.shape[0] > 0
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-9)
    assert not torch.equal(batch[0], batch[4])  # two frames, two answers


@pytest.mark.parametrize(("extra", "says"), [
    (["--batch", "2"], "add --bundle DIR"),
    (["--batch", "0", "--bundle", "B"], "give 1 or more"),
])
def test_export_refuses_what_it_cannot_batch(extra, says, tmp_path, capsys):
    args = ["export", "--model", "rtmdet-ins-t", "--runtime", "openvino", "--out", str(tmp_path / "out"), *extra]
    assert main([a.replace("B", str(tmp_path / "b")) if a == "B" else a for a in args]) != 0
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_the_rig_runs_batch_through_a_static_batch_bundle(tmp_path, capsys):
    """``maskbench rig --config batch``: a bundle whose graph takes the three front cameras'
    simultaneous frames, built from the model and cached, every camera's frames processed."""
    out = tmp_path / "rig"
    assert main(["rig", "--model", "rtmdet-ins-t", "--runtime", "onnxruntime", "--input-size", "320x192", "--config",
                 "batch", "--duration", "2", "--deadline", "60000", "--out", str(out)]) == 0
    assert "a static batch of 3" in capsys.readouterr().out
    data = json.loads((out / "rig.json").read_text())
    assert [r["executor"] for r in data["results"]] == ["batch:3"]
    assert all(camera["processed"] >= 1 for camera in data["results"][0]["cameras"])
    assert json.loads((Path(data["bundle"]) / "manifest.json").read_text())["batch"] == 3


def test_an_int8_batch_bundle_calibrates_on_batches(tmp_path, left_frame):
    """int8 with ``--batch 2``: each calibration frame fills both slots of a batch, the bundle's
    graph is quantized (QDQ pairs) and answers each image as it answers it in the other slot
    (frames mixed across slots gave the slots' own nodes different scales: mask logits apart by 47)."""
    import onnx

    import maskbench.deploy
    from maskbench.export.calibration import batched_feeds

    singles = [{"images": np.full((1, 3, 2, 2), v, np.float32)} for v in range(3)]
    assert [b["images"][:, 0, 0, 0].tolist() for b in batched_feeds(singles, 2)] == [[0, 0], [1, 1], [2, 2]]

    bundle = tmp_path / "b"
    assert main(["export", "--model", "rtmdet-ins-t", "--runtime", "onnxruntime", "--precision", "int8",
                 "--input-size", "320x192", "--out", str(tmp_path / "out"), "--bundle", str(bundle),
                 "--batch", "2"]) == 0
    model = maskbench.deploy.load(bundle)
    assert (model.manifest.precision, model.batch) == ("int8", 2)
    ops = {node.op_type for node in onnx.load(str(bundle / model.manifest.artifact)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    front = load_image(find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path)
    (front_feeds, _), (left_feeds, _) = model.prepare(front), model.prepare(left_frame)
    first, second = model.infer_batch([front_feeds, left_feeds]), model.infer_batch([left_feeds, front_feeds])
    for ours, theirs in ((first[0], second[1]), (first[1], second[0])):
        assert ours[0].shape[0] > 0
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
