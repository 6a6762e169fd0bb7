"""``maskbench recommend --bundle``: the pick becomes a bundle of the very network the benchmark
timed (same calibration frames and seed), its measured latency in the manifest, signed with
``--sign`` and loaded with its trusted key."""

from __future__ import annotations

import json

import numpy as np

import maskbench.deploy
from maskbench.cli.main import main
from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes
from maskbench.pipeline.bundle_keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE
from maskbench.pipeline.manifest import MANIFEST_FILE
from maskbench.report.detections_file import load_detections_file
from maskbench.results.records import read_records

FRONT = embedded_nuscenes() / "samples" / "CAM_FRONT"


def test_the_pick_is_bundled_with_its_measurements(tmp_path, capsys):
    out, bundle = tmp_path / "bench", tmp_path / "bundle"
    assert main(["benchmark", "--models", "rtmdet-ins-t", "--runtimes", "onnxruntime", "--input-size", "320x192",
                 "--images", str(FRONT), "--warmup", "0", "--repeat", "1", "--out", str(out)]) == 0
    assert main(["keys", "new", "--out", str(tmp_path / "keys")]) == 0
    assert main(["recommend", "--results", str(out), "--bundle", str(bundle),
                 "--sign", str(tmp_path / "keys" / PRIVATE_KEY_FILE)]) == 0  # signed (issue 30)
    assert f"bundle: {bundle}" in capsys.readouterr().out
    record = read_records(out / "results.jsonl")[-1]
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    assert manifest["latency_ms"] == record.latency().mean_ms and manifest["runtime"] == "onnxruntime"

    measured = load_detections_file(out / record.detections_file)[0]
    deployed = maskbench.deploy.load(bundle, trusted_keys=[tmp_path / "keys" / PUBLIC_KEY_FILE])(
        load_image(measured.path))
    # the detections file rounds boxes to 0.01 px and scores to 1e-5; masks and labels are exact
    assert len(deployed) == len(measured.detections) == 100
    np.testing.assert_array_equal(deployed.labels, measured.detections.labels)
    np.testing.assert_array_equal(deployed.masks, measured.detections.masks)
    np.testing.assert_allclose(deployed.boxes, measured.detections.boxes, atol=0.01)
