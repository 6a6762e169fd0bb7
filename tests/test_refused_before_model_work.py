"""Every refusal that needs no model comes before any model work, in one line: an unknown
model, runtime or precision, a precision a runtime cannot run on this device or CPU, a runtime
that is not installed. Building a model or starting a benchmark worker fails these tests."""

from __future__ import annotations

import sys

import pytest

from maskbench.benchmark.plan import plan_jobs
from maskbench.cli.main import main
from maskbench.utils.errors import MaskbenchError, UnknownModelError
from maskbench.verify.conversion_check import run_check


@pytest.fixture(autouse=True)
def no_model_work(monkeypatch):
    """A CPU-only machine without TensorRT, where building a model or starting a worker fails."""
    def refuse(*args, **kwargs):
        raise AssertionError("model work started before the refusal")

    monkeypatch.setattr("maskbench.models.factory.build_model", refuse)
    monkeypatch.setattr("maskbench.benchmark.runner.run_in_subprocess", refuse)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def _no_native_bf16(monkeypatch):
    monkeypatch.setattr("maskbench.runtimes.openvino_.optimization_capabilities", lambda core=None: ["FP32", "INT8"])


def _refused(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (code, err)
    return err


@pytest.mark.parametrize("argv, message", [
    (["predict", "--model", "r50", "--runtime", "onnxruntime", "--precision", "bf16"],
     "runtime 'onnxruntime' cannot run bf16 on cpu"),
    (["predict", "--model", "r50", "--runtime", "openvino", "--precision", "bf16"],
     "this CPU cannot run bf16 natively"),
    (["evaluate", "--model", "r50", "--runtime", "openvino", "--precision", "fp16"],
     "runtime 'openvino' cannot run fp16 on cpu"),
    (["evaluate", "--model", "r50", "--compare-runtime", "onnxruntime", "--compare-precision", "bf16"],
     "runtime 'onnxruntime' cannot run bf16 on cpu"),
    (["export", "--model", "r50", "--runtime", "onnxruntime", "--precision", "fp16"],
     "runtime 'onnxruntime' cannot run fp16 on cpu"),
    (["export", "--model", "r50", "--runtime", "tensorrt"], "runtime 'tensorrt' needs the Python package"),
    (["check-conversion", "--model", "r50", "--runtimes", "onnxruntime,torch", "--precision", "int8"],
     "runtime 'torch' cannot run int8 on cpu"),
    (["benchmark", "--models", "r50", "--runtimes", "onnxruntime", "--precisions", "fp16"],
     "no job of this benchmark can run here: onnxruntime fp16: runtime 'onnxruntime' cannot run fp16 on cpu"),
    (["benchmark", "--models", "r50,convnext-t", "--runtimes", "torch,onnxruntime", "--precisions", "fp16"],
     "no job of this benchmark can run here: torch fp16: runtime 'torch' cannot run fp16 on cpu"),
    (["benchmark", "--models", "r50", "--runtimes", "openvino", "--precisions", "bf16"],
     "no job of this benchmark can run here: openvino bf16: this CPU cannot run bf16 natively"),
    (["benchmark", "--models", "r50", "--runtimes", "tensorrt"],
     "no job of this benchmark can run here: tensorrt fp32: runtime 'tensorrt' needs the Python package"),
])
def test_each_command_refuses_in_one_line_before_any_model_work(argv, message, monkeypatch, capsys, tmp_path):
    _no_native_bf16(monkeypatch)
    err = _refused([*argv, "--out", str(tmp_path / "out")], capsys)
    assert message in err
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_export_of_the_onnx_file_alone_needs_onnx_first(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    err = _refused(["export", "--model", "r50", "--out", str(tmp_path)], capsys)
    assert "ONNX export needs the Python package 'onnx'" in err


def test_the_python_api_refuses_unknown_names_and_impossible_plans():
    for models, runtimes, precisions, message in (
            (["r52"], ["torch"], ["fp32"], "unknown model 'r52'"),
            (["r50"], ["torch"], ["fp8"], "unknown precision(s) fp8"),
            (["r50"], ["tensorflow"], ["fp32"], "unknown runtime(s) tensorflow"),
            (["r50"], ["torch"], [], "nothing to benchmark"),
            (["r50"], ["onnxruntime-cuda", "tensorrt"], ["fp16"], "no job of this benchmark can run here")):
        with pytest.raises(MaskbenchError) as info:
            plan_jobs(models, runtimes, precisions)
        assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UnknownModelError):
        run_check("r52", ["torch"])


def test_a_cross_product_runs_the_pairs_that_exist_and_keeps_a_runtime_not_installed():
    """torch int8 and onnxruntime bf16 can never run here: left out, each with its reason;
    tensorrt (not installed) stays, for the worker to record with its install command."""
    plan = plan_jobs(["r50", "convnext-t"], ["torch", "onnxruntime", "tensorrt"], ["fp32", "int8", "bf16"])
    pairs = {(job.runtime, job.precision) for job in plan}
    assert pairs == {("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                     ("tensorrt", "fp32")}
    assert len(plan) == 2 * len(pairs) and isinstance(plan, list)
    assert [line.split(":")[0] for line in plan.left_out] == [
        "torch int8", "onnxruntime bf16", "tensorrt int8", "tensorrt bf16"]
    assert "runtime 'torch' cannot run int8 on cpu" in plan.left_out[0]


def test_the_benchmark_command_prints_what_it_left_out(monkeypatch, capsys, tmp_path):
    from maskbench.benchmark.runner import RunSummary

    planned = []

    def run_benchmark(jobs, out, **kwargs):
        planned.extend(jobs)
        return RunSummary(out / "results.jsonl")

    monkeypatch.setattr("maskbench.benchmark.runner.run_benchmark", run_benchmark)
    monkeypatch.setattr("maskbench.benchmark.cli._write_report", lambda records, args: None)
    code = main(["benchmark", "--models", "r50", "--runtimes", "torch,onnxruntime", "--precisions", "fp32,bf16",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1  # no record: the runner was a stand-in
    assert [(job.runtime, job.precision) for job in planned] == [("torch", "fp32"), ("torch", "bf16"),
                                                                ("onnxruntime", "fp32")]
    assert "left out: onnxruntime bf16: runtime 'onnxruntime' cannot run bf16 on cpu" in out
    assert "= 3 job(s)" in out
