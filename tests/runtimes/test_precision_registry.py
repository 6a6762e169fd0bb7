"""Precision and device as registry parameters: what each runtime accepts, refused in one line
that says what to use instead, before any model work (``loaded`` is ``None`` throughout)."""

from __future__ import annotations

import sys
import types

import pytest

from maskbench.cli.main import main
from maskbench.runtimes import RUNTIMES, get_runtime
from maskbench.runtimes.openvino_ import compile_config, require_native_bf16
from maskbench.runtimes.registry import (
    UnsupportedDeviceError,
    UnsupportedPrecisionError,
    available_runtimes,
    require_runtime,
)
from maskbench.utils.errors import RuntimeNotInstalled


def _one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_precision_table():
    table = {name: info.precisions for name, info in RUNTIMES.items()}
    assert table == {
        "torch": {"fp32": ("cpu", "cuda"), "fp16": ("cuda",), "bf16": ("cpu",)},
        "torch-compile": {"fp32": ("cpu", "cuda"), "fp16": ("cuda",), "bf16": ("cpu",)},
        "onnxruntime": {"fp32": ("cpu",), "int8": ("cpu",)},
        "onnxruntime-cuda": {"fp32": ("cuda",)},
        "openvino": {"fp32": ("cpu",), "bf16": ("cpu",), "int8": ("cpu",)},
        "tensorrt": {"fp32": ("cuda",), "fp16": ("cuda",)},
    }


def test_fp16_on_the_cpu_torch_runtime_says_what_to_use():
    with pytest.raises(UnsupportedPrecisionError) as info:
        get_runtime("torch", None, device="cpu", precision="fp16")
    message = _one_line(info)
    assert "runtime 'torch' cannot run fp16 on cpu" in message
    assert "fp32 (cpu, cuda), fp16 (cuda), bf16 (cpu)" in message and "--precision fp32 or bf16" in message


def test_bf16_on_onnxruntime_points_to_the_runtimes_that_have_it():
    with pytest.raises(UnsupportedPrecisionError) as info:
        get_runtime("onnxruntime", None, precision="bf16")
    message = _one_line(info)
    assert "supports fp32 (cpu)" in message and "bf16 on cpu with: torch, torch-compile, openvino" in message


def test_precision_is_checked_before_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(UnsupportedPrecisionError, match="runtime 'tensorrt' cannot run bf16 on cuda"):
        require_runtime("tensorrt", "bf16")
    with pytest.raises(UnsupportedPrecisionError, match="unknown precision 'int4'"):
        require_runtime("torch", "int4", "cpu")


def test_devices_are_refused_in_one_line():
    with pytest.raises(UnsupportedDeviceError) as info:
        get_runtime("onnxruntime", None, device="cuda:0")
    assert "runs on the CPU only" in _one_line(info)
    with pytest.raises(UnsupportedDeviceError) as info:
        require_runtime("tensorrt", device="cpu")
    assert "runs on cuda only" in _one_line(info) and "torch, torch-compile, onnxruntime, openvino" in str(info.value)


def test_onnxruntime_cuda_needs_the_gpu_build(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(RuntimeNotInstalled) as info:
        get_runtime("onnxruntime-cuda", None)
    message = _one_line(info)
    assert "no CUDAExecutionProvider" in message and "pip install onnxruntime-gpu" in message
    assert "onnxruntime-cuda" not in available_runtimes()


def test_tensorrt_missing_package_then_missing_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(RuntimeNotInstalled) as info:
        get_runtime("tensorrt", None, precision="fp16")
    assert "needs the Python package 'tensorrt'" in _one_line(info) and "pip install tensorrt" in str(info.value)
    # With the package importable (a stand-in module) the next refusal is the missing GPU.
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(RuntimeNotInstalled) as info:
        get_runtime("tensorrt", None)
    assert "no CUDA GPU" in _one_line(info)


class _FakeCore:
    def __init__(self, capabilities):
        self.capabilities = capabilities

    def get_property(self, device, name):
        assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
        return self.capabilities


def test_openvino_bf16_needs_native_bf16():
    with pytest.raises(UnsupportedPrecisionError) as info:
        require_native_bf16(_FakeCore(["FP32", "INT8", "BIN", "EXPORT_IMPORT"]))
    assert _one_line(info).startswith("this CPU cannot run bf16 natively (OpenVINO reports: FP32, INT8, BIN, ")
    require_native_bf16(_FakeCore(["FP32", "BF16", "INT8"]))  # no error
    assert compile_config(2, "bf16")["INFERENCE_PRECISION_HINT"] == "bf16"
    assert compile_config(2)["INFERENCE_PRECISION_HINT"] == "f32"


def test_cli_refuses_before_loading_the_model(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("maskbench.predict.predictor.load_predictor", lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code = main(["predict", "--model", "r50", "--precision", "fp16", "--out", str(tmp_path)])  # torch, on the CPU
    err = capsys.readouterr().err.strip()
    assert code == 2 and not calls and "\n" not in err
    assert err.startswith("error: runtime 'torch' cannot run fp16 on cpu")
    code = main(["export", "--model", "r50", "--runtime", "tensorrt", "--precision", "fp16", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not calls and "\n" not in err and "pip install tensorrt" in err


def test_runtimes_command_lists_everything(capsys):
    assert main(["runtimes"]) == 0
    out = capsys.readouterr().out
    for name, info in RUNTIMES.items():
        assert name in out and info.precisions_text() in out
    assert "tensorrt: untested: TensorRT was not available where maskbench was developed" in out
