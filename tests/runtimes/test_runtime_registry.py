"""Runtime registry, missing packages and the export cache (no real export: seconds)."""

from __future__ import annotations

import json
import sys

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from maskbench.cli.main import main
from maskbench.export import onnx_export
from maskbench.export.onnx_export import KEY_PROP, ExportTarget, export_key, export_onnx, stored_key
from maskbench.models.factory import LoadedModel
from maskbench.models.mask_rcnn.roi_heads import DetectionConfig
from maskbench.models.mask_rcnn.rpn import ProposalConfig
from maskbench.runtimes import RUNTIMES, RuntimeNotInstalled, available_runtimes, get_runtime
from maskbench.runtimes.registry import UnknownRuntimeError
from maskbench.zoo import get_spec


def test_registry_names_and_what_is_installed_here():
    assert list(RUNTIMES) == ["torch", "torch-compile", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt"]
    # The test extra installs the CPU runtimes; CI has no GPU, no onnxruntime-gpu and no TensorRT.
    assert available_runtimes() == ["torch", "torch-compile", "onnxruntime", "openvino"]
    with pytest.raises(UnknownRuntimeError, match="choose one of: torch, torch-compile, onnxruntime, "):
        get_runtime("tensorflow", None)


@pytest.mark.parametrize("package", ["onnxruntime", "openvino", "onnx"])
def test_missing_package_gives_one_line_with_the_pip_command(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # what `import package` then does: ImportError
    runtime = "openvino" if package == "openvino" else "onnxruntime"
    with pytest.raises(RuntimeNotInstalled) as info:
        get_runtime(runtime, None)
    message = str(info.value)
    assert "\n" not in message and f"'{package}'" in message
    assert "pip install 'maskbench[runtimes]'" in message and f"pip install {package}" in message
    assert runtime not in available_runtimes() and "torch" in available_runtimes()


def test_predict_with_a_missing_runtime_fails_before_loading_the_model(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    calls = []
    monkeypatch.setattr("maskbench.predict.predictor.load_predictor", lambda *a, **k: calls.append(a))
    code = main(["predict", "--model", "r50", "--runtime", "openvino", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not calls
    assert err.startswith("error: runtime 'openvino' needs the Python package 'openvino'") and "\n" not in err


# ----------------------------------------------------------------------------- export cache
class _TinyModel(torch.nn.Module):
    """Stands in for a MaskRCNN: the cache only reads its state_dict and configs."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(self.linear.weight, value)
        torch.nn.init.zeros_(self.linear.bias)
        self.detection_config = DetectionConfig(fixed_count=True)
        self.proposal_config = ProposalConfig()

    def export_settings(self) -> dict[str, dict]:  # as MaskRCNN's: what the export key holds
        from dataclasses import asdict

        return {"detection_config": asdict(self.detection_config), "proposal_config": asdict(self.proposal_config)}


def _loaded(value: float = 1.0) -> LoadedModel:
    return LoadedModel(_TinyModel(value), get_spec("r50"), "test")


TARGET = ExportTarget((192, 320), (192, 320))


@pytest.fixture
def fake_trace(monkeypatch):
    """Counts exports; writes a one-node ONNX file instead of tracing a detector."""
    calls = []

    def trace(loaded, target, path, opset):
        calls.append(path)
        node = helper.make_node("Identity", ["images"], ["boxes"])
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph), str(path))

    monkeypatch.setattr(onnx_export, "_trace_to_onnx", trace)
    return calls


def test_cache_reuses_a_valid_file(tmp_path, fake_trace):
    loaded = _loaded()
    path = export_onnx(loaded, TARGET, cache_dir=tmp_path)
    assert len(fake_trace) == 1 and path.parent == tmp_path and path.name.startswith("r50_stretch_320x192_")
    assert stored_key(path) == export_key(loaded, TARGET)
    assert export_onnx(loaded, TARGET, cache_dir=tmp_path) == path
    assert len(fake_trace) == 1, "a valid cached file is not exported again"
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"


def test_cache_reexports_a_stale_or_foreign_file(tmp_path, fake_trace):
    loaded = _loaded()
    path = export_onnx(loaded, TARGET, cache_dir=tmp_path)
    # Stale: same name, but the key inside says another torch version.
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == KEY_PROP:
            key = json.loads(prop.value)
            key["torch"] = "0.0.1"
            prop.value = json.dumps(key)
    onnx.save(proto, str(path))
    assert export_onnx(loaded, TARGET, cache_dir=tmp_path) == path and len(fake_trace) == 2
    assert stored_key(path) == export_key(loaded, TARGET)
    # Foreign: not even ONNX (e.g. a truncated copy).
    path.write_bytes(b"not an onnx file")
    assert export_onnx(loaded, TARGET, cache_dir=tmp_path) == path and len(fake_trace) == 3
    # No key at all (an ONNX file from elsewhere under this name).
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    export_onnx(loaded, TARGET, cache_dir=tmp_path)
    assert len(fake_trace) == 4 and stored_key(path) == export_key(loaded, TARGET)


def test_cache_key_follows_weights_size_mode_and_settings(tmp_path, fake_trace):
    loaded = _loaded()
    base = export_onnx(loaded, TARGET, cache_dir=tmp_path)
    others = {
        "weights": export_onnx(_loaded(2.0), TARGET, cache_dir=tmp_path),
        "size": export_onnx(loaded, ExportTarget((800, 1344), (800, 1344)), cache_dir=tmp_path),
        "keep-ratio": export_onnx(loaded, ExportTarget((192, 320), None), cache_dir=tmp_path),
        "opset": export_onnx(loaded, TARGET, cache_dir=tmp_path, opset=18),
    }
    changed = _loaded()
    changed.model.detection_config = DetectionConfig(fixed_count=False)
    others["detection config"] = export_onnx(changed, TARGET, cache_dir=tmp_path)
    assert len({base, *others.values()}) == 1 + len(others)
    assert others["keep-ratio"].name.startswith("r50_keep_ratio_320x192_")
    key = export_key(loaded, TARGET)
    assert key["torch"] == torch.__version__ and key["opset"] == 17 and len(key["weights_sha256"]) == 64


def test_weights_hash_sees_every_value():
    a, b = _TinyModel(), _TinyModel()
    assert onnx_export.weights_hash(a) == onnx_export.weights_hash(b)
    with torch.no_grad():
        b.linear.bias[1] += 1e-7
    assert onnx_export.weights_hash(a) != onnx_export.weights_hash(b)


def test_the_registry_says_which_runtimes_a_bundle_deploys_with():
    from maskbench.runtimes.registry import deployable_runtimes

    assert deployable_runtimes() == ("onnxruntime", "openvino")


def test_the_registry_imports_no_torch():
    """The command line reads it while it builds its parser: torch only when a device is checked."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, maskbench.runtimes.registry as r; r.runtime_info('openvino'); print('torch' in sys.modules)"
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(src), "PATH": ""})
    assert done.stdout.strip() == "False", done.stderr
