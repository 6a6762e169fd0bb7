"""Bundle integrity and provenance (issue 30): every file of a bundle is in its sealed manifest,
and with trusted keys only a bundle signed by one of them is accepted. Each refusal is one line
naming the file, from ``maskbench.deploy.load`` / ``verify_bundle`` and from
``python -m maskbench.deploy --verify`` (exit 2). No model is built here: the bundles are a
small stand-in artifact with a real manifest, sealed and signed as ``export --bundle`` does
(tests/deploy/test_deploy.py loads and runs a signed real one)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from maskbench.cli.main import main
from maskbench.deploy.__main__ import main as deploy_main
from maskbench.pipeline.bundle_keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, load_private_key, new_key_pair
from maskbench.pipeline.bundle_seal import SEAL_FILE, canonical_sha256, file_digests, seal_bundle, verify_bundle
from maskbench.pipeline.manifest import FORMAT_VERSION, MANIFEST_FILE, BundleError, Manifest

pytest.importorskip("cryptography")

ARTIFACT, COMPANION = "model.xml", "model.bin"


def _manifest(folder: Path, **changes) -> Manifest:
    data = dict(model="mask-rcnn_r50_fpn_1x_coco", alias="r50", family="mask_rcnn", weights="random",
                weights_sha256="0", mode="stretch", input_size=[320, 192], input_hw=[192, 320], img_shape=[192, 320],
                input_format=dict(mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], bgr=True,
                                  pad_value=None, stretch_size=[1344, 800], keep_ratio_scale=[1333, 800],
                                  pad_to_scale=False, pad_divisor=32, keep_ratio=True, pixel_divisor=None),
                class_names=["person"],
                mask_threshold=0.5, runtime="openvino", runtime_version="2026.4.1", precision="fp32", threads=2,
                artifact=ARTIFACT, artifact_sha256=file_digests(folder, [ARTIFACT])[ARTIFACT],
                output_names=["boxes", "scores", "labels", "masks"], extra_files=[COMPANION],
                files=file_digests(folder, [ARTIFACT, COMPANION]), latency_ms=212.0,
                fidelity={"mean_mask_iou": 0.99}, format_version=FORMAT_VERSION)
    data.update(changes)
    return Manifest.from_dict(data)


def _bundle(folder: Path, key: Path | None = None) -> Path:
    folder.mkdir()
    (folder / ARTIFACT).write_text("<net>the graph</net>")
    (folder / COMPANION).write_bytes(b"\x00weights" * 64)
    seal_bundle(folder, _manifest(folder), load_private_key(key) if key else None)
    return folder


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("keys")
    return {name: new_key_pair(root / name) for name in ("ours", "theirs")}


def _refused(folder: Path, capsys, trusted: list[Path] | None = None) -> str:
    with pytest.raises(BundleError) as raised:
        verify_bundle(folder, trusted)
    assert "\n" not in str(raised.value)
    flags = [arg for key in trusted or () for arg in ("--trusted-key", str(key))]
    assert deploy_main([str(folder), "--verify", *flags]) == 2
    line = capsys.readouterr().err.strip()
    assert line == f"error: {raised.value}"
    return line


def test_a_sealed_bundle_verifies_and_says_what_it_holds(tmp_path, keys, capsys):
    folder = _bundle(tmp_path / "b")
    assert verify_bundle(folder).manifest.latency_ms == 212.0
    assert deploy_main([str(folder), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "ok: 2 file(s)" in out and "unsigned" in out and "212.0 ms" in out


def test_an_edited_manifest_is_refused(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["mask_threshold"] = 0.1  # a threshold nobody measured
    (folder / MANIFEST_FILE).write_text(json.dumps(data, indent=1))
    line = _refused(folder, capsys)
    assert f"{folder / MANIFEST_FILE}: changed after export" in line and "re-export" in line


def test_reformatting_the_manifest_is_no_edit(tmp_path):
    folder = _bundle(tmp_path / "b")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(dict(reversed(list(data.items()))), indent=4))
    verify_bundle(folder)


def test_a_swapped_artifact_with_its_hash_edited_is_refused(tmp_path, keys, capsys):
    folder = _bundle(tmp_path / "b", keys["ours"][0])
    (folder / ARTIFACT).write_text("<net>another graph</net>")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["files"][ARTIFACT] = data["artifact_sha256"] = file_digests(folder, [ARTIFACT])[ARTIFACT]
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    assert "changed after export" in _refused(folder, capsys)
    # ... and with the seal's digest edited too: only the signature tells
    seal = json.loads((folder / SEAL_FILE).read_text())
    seal["manifest_sha256"] = canonical_sha256(data)
    (folder / SEAL_FILE).write_text(json.dumps(seal))
    verify_bundle(folder)  # without trusted keys the digest is all there is
    line = _refused(folder, capsys, [keys["ours"][1]])
    assert f"{folder}: the signature by key" in line and "does not match the manifest" in line


def test_a_changed_companion_file_is_refused(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    (folder / COMPANION).write_bytes(b"\x01weights" * 64)
    line = _refused(folder, capsys)
    assert f"{folder / COMPANION}: sha256" in line and "differs from the manifest's" in line


def test_an_added_file_is_refused(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    (folder / "sitecustomize.py").write_text("print('hello')")
    line = _refused(folder, capsys)
    assert f"{folder / 'sitecustomize.py'}: not part of the bundle" in line


def test_a_removed_file_is_refused(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    (folder / COMPANION).unlink()
    assert f"the bundle's file {COMPANION} is missing" in _refused(folder, capsys)


def test_an_unsealed_bundle_is_refused(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    (folder / SEAL_FILE).unlink()
    assert "not sealed" in _refused(folder, capsys)


def test_a_format_1_bundle_is_refused_with_the_command_that_rebuilds_it(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["format_version"] = 1
    del data["files"]
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    (folder / SEAL_FILE).unlink()  # format 1 had none
    line = _refused(folder, capsys)
    assert "format version 1 is older" in line
    assert (f"maskbench export --model r50 --runtime openvino --precision fp32 --input-size 320x192 --images FRAMES "
            f"--out EXPORT_DIR --bundle {folder}") in line


def test_a_format_2_bundle_with_a_flat_input_format_is_refused_with_the_command_that_rebuilds_it(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data.update(data.pop("input_format"), format_version=2)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    line = _refused(folder, capsys)
    assert "format version 2 is older" in line and "input format is flat" in line
    assert f"--input-size 320x192 --images FRAMES --out EXPORT_DIR --bundle {folder}" in line


def test_the_input_format_is_read_by_name(tmp_path):
    fmt = _manifest(_bundle(tmp_path / "b"), input_format={"pad_to_scale": True, "pad_value": 114.0, "bgr": False,
                                             "mean": [1, 2, 3], "std": [4, 5, 6], "stretch_size": [640, 640],
                                             "keep_ratio_scale": [640, 480], "pad_divisor": 1,
                                             "keep_ratio": False, "pixel_divisor": 255.0}).input_format
    assert (fmt.mean, fmt.std, fmt.bgr, fmt.pad_value, fmt.pad_to_scale) == ((1, 2, 3), (4, 5, 6), False, 114.0, True)
    assert (fmt.stretch_size, fmt.keep_ratio_scale) == ((640, 640), (640, 480))
    assert (fmt.pad_divisor, fmt.keep_ratio, fmt.pixel_divisor) == (1, False, 255.0)


def test_a_format_3_bundle_is_refused_with_the_command_that_rebuilds_it(tmp_path, capsys):
    folder = _bundle(tmp_path / "b")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    for key in ("pad_divisor", "keep_ratio", "pixel_divisor"):
        del data["input_format"][key]
    data["format_version"] = 3
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    line = _refused(folder, capsys)
    assert "format version 3 is older" in line and "how to resize and pad" in line


def test_an_input_format_missing_a_field_is_refused(tmp_path):
    folder = _bundle(tmp_path / "b")
    with pytest.raises(BundleError, match="input_format is not"):
        _manifest(folder, input_format={"mean": [1, 2, 3]})


def test_a_signed_bundle_verifies_against_its_key(tmp_path, keys, capsys):
    folder = _bundle(tmp_path / "b", keys["ours"][0])
    verified = verify_bundle(folder, [keys["ours"][1], keys["theirs"][1]])
    assert verified.trusted_source == str(keys["ours"][1])
    assert deploy_main([str(folder), "--verify", "--trusted-key", str(keys["ours"][1])]) == 0
    assert f"verified with {keys['ours'][1]}" in capsys.readouterr().out


def test_a_bundle_signed_by_another_key_is_refused(tmp_path, keys, capsys):
    folder = _bundle(tmp_path / "b", keys["theirs"][0])
    line = _refused(folder, capsys, [keys["ours"][1]])
    assert "which is not a trusted key" in line and "--trusted-key" in line


def test_an_unsigned_bundle_is_refused_when_keys_are_trusted(tmp_path, keys, capsys):
    folder = _bundle(tmp_path / "b")
    line = _refused(folder, capsys, [keys["ours"][1]])
    assert "is not signed" in line and "--sign KEYFILE" in line


def test_keys_new_writes_a_private_key_only_its_owner_reads(tmp_path, capsys):
    assert main(["keys", "new", "--out", str(tmp_path / "k")]) == 0
    assert "--trusted-key" in capsys.readouterr().out
    assert stat.S_IMODE((tmp_path / "k" / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert (tmp_path / "k" / PUBLIC_KEY_FILE).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert main(["keys", "new", "--out", str(tmp_path / "k")]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err


def test_a_signing_key_others_can_read_or_no_key_is_refused_before_model_work(tmp_path, keys, capsys):
    private = tmp_path / "open.key"
    private.write_bytes(keys["ours"][0].read_bytes())
    os.chmod(private, 0o644)
    command = ["export", "--model", "r50", "--runtime", "onnxruntime", "--out", str(tmp_path / "x"),
               "--bundle", str(tmp_path / "b")]
    assert main([*command, "--sign", str(private)]) == 2
    assert f"chmod 600 {private}" in capsys.readouterr().err
    assert main([*command, "--sign", str(keys["ours"][1])]) == 2  # the public key given by mistake
    assert "not an unencrypted PEM private key" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_format_4_manifest_reads_as_a_single_image_graph(tmp_path):
    """Format 5 added ``batch`` (a static-batch graph); a version-4 manifest means one image."""
    folder = _bundle(tmp_path / "b")
    assert _manifest(folder, format_version=4).batch == 1
    assert _manifest(folder, batch=3).batch == 3
