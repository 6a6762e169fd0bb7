"""The deploy-only install (issue 17): a fresh virtualenv with ``pip install "maskbench[deploy]"
openvino`` (no torch) runs a bundle the full install made and signed, checking its signature
(issue 30), and writes the same COCO results as the full install's deploy; the commands that need
torch say so in one line.

The virtualenv is built from this checkout through the package index (~15 s and ~500 MB here);
where no index can be reached the test is skipped, saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes
from maskbench.pipeline.bundle_keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE

REPO = Path(__file__).resolve().parents[2]
FRONT = embedded_nuscenes() / "samples" / "CAM_FRONT"
NO_INDEX = ("Could not find a version", "No matching distribution", "Failed to establish a new connection",
            "Temporary failure in name resolution", "Network is unreachable")


@pytest.fixture(scope="module")
def lean_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("lean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              f"{REPO}[deploy]", "openvino"], capture_output=True, text=True, timeout=900)
    if install.returncode != 0:
        if any(sign in install.stderr for sign in NO_INDEX):
            pytest.skip(f"no package index reachable for the lean virtualenv: {install.stderr.strip()[-200:]}")
        raise AssertionError(f"the deploy-only install failed:\n{install.stderr[-2000:]}")
    return python


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """Signed (issue 30): the lean install verifies the signature against the public key."""
    root = tmp_path_factory.mktemp("bundle")
    assert main(["keys", "new", "--out", str(root / "keys")]) == 0
    assert main(["export", "--model", "r50", "--runtime", "openvino", "--input-size", "320x192",
                 "--images", str(FRONT), "--out", str(root / "export"), "--bundle", str(root / "r50"),
                 "--sign", str(root / "keys" / PRIVATE_KEY_FILE)]) == 0
    return root / "r50"


def _deploy(python: Path, bundle: Path, out: Path) -> list[dict]:
    public = bundle.parent / "keys" / PUBLIC_KEY_FILE
    done = subprocess.run([str(python), "-m", "maskbench.deploy", str(bundle), "--images", str(FRONT),
                           "--out", str(out), "--trusted-key", str(public)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "results.json").read_text())


def test_the_lean_install_has_no_torch_and_runs_the_bundle_as_the_full_one(lean_python, bundle, tmp_path):
    lean = subprocess.run([str(lean_python), "-c", "import importlib.util as u; "
                           "print([m for m in ('torch', 'torchvision', 'onnx') if u.find_spec(m)])"],
                          capture_output=True, text=True, check=True)
    assert lean.stdout.strip() == "[]"
    full_results = _deploy(Path(sys.executable), bundle, tmp_path / "full")
    lean_results = _deploy(lean_python, bundle, tmp_path / "lean")
    assert len(full_results) == 100 and lean_results == full_results


def test_a_command_that_needs_torch_names_the_full_install(lean_python, tmp_path):
    maskbench = lean_python.parent / "maskbench"
    done = subprocess.run([str(maskbench), "predict", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: `maskbench predict` needs the full install ('torch' is not installed")
    assert 'pip install "maskbench[runtimes]"' in done.stderr
