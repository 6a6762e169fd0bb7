"""The benchmark's default precisions from faked capabilities (runtime, CPU flags, NNCF), and
the command line using them with --fidelity on the reduced row only."""

from __future__ import annotations

import pytest

from maskbench.benchmark import cli as benchmark_cli
from maskbench.benchmark import plan as plan_module
from maskbench.benchmark.plan import JobSpec, plan_jobs
from maskbench.benchmark.precision_choice import Capabilities, choose_precisions
from maskbench.benchmark.preflight import JobPlan
from maskbench.cli.main import build_parser

OV_ALL = ("FP32", "BF16", "INT8", "BIN", "EXPORT_IMPORT")
OV_NO_BF16 = ("FP32", "INT8", "BIN", "EXPORT_IMPORT")
AVX2 = {"avx2", "fma"}
CASCADE_LAKE = AVX2 | {"avx512f", "avx512_vnni"}
ZEN4 = CASCADE_LAKE | {"avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_int8", "amx_tile"}


def _choose(runtime_caps, flags, nncf, runtimes=("openvino",)):
    return choose_precisions(list(runtimes), Capabilities(tuple(runtime_caps), frozenset(flags), nncf))


@pytest.mark.parametrize(("runtime_caps", "flags", "nncf", "expected"), [
    (OV_NO_BF16, AVX2, True, ("fp32",)),  # int8 without VNNI: not the default
    (OV_NO_BF16, CASCADE_LAKE, True, ("fp32", "int8")),
    (OV_NO_BF16, CASCADE_LAKE, False, ("fp32",)),
    (OV_ALL, ZEN4, False, ("fp32", "bf16")),  # the AMD EPYC with the runtimes extra only
    (OV_ALL, ZEN4, True, ("fp32", "int8")),  # both native: int8 (VNNI: twice bf16's work per instruction)
    (OV_ALL, SAPPHIRE_RAPIDS, True, ("fp32", "int8")),
    (OV_ALL, SAPPHIRE_RAPIDS, False, ("fp32", "bf16")),
    (OV_NO_BF16, ZEN4, False, ("fp32",)),  # the flags alone do not make bf16: the runtime must list it
    (OV_ALL, set(), False, ("fp32", "bf16")),  # flags unreadable: the runtime's word
    ((), SAPPHIRE_RAPIDS, True, ("fp32",)),  # OpenVINO not installed
])
def test_fp32_plus_the_fastest_native_reduced_precision(runtime_caps, flags, nncf, expected):
    choice = _choose(runtime_caps, flags, nncf)
    assert choice.precisions == expected and choice.reduced == expected[1:]
    assert choice.reason


def test_the_reason_names_what_is_missing():
    assert "NNCF" in _choose(OV_ALL, ZEN4, False).reason
    assert "VNNI" in _choose(OV_NO_BF16, AVX2, True).reason
    assert "preferred to bf16" in _choose(OV_ALL, SAPPHIRE_RAPIDS, True).reason


def test_other_runtimes_keep_fp32():
    assert _choose(OV_ALL, SAPPHIRE_RAPIDS, True, runtimes=("onnxruntime",)).precisions == ("fp32",)
    assert _choose(OV_ALL, SAPPHIRE_RAPIDS, True, runtimes=("torch", "openvino")).precisions == ("fp32", "int8")


def test_the_benchmark_default_is_the_machines_choice_with_fidelity_on_the_reduced_row(monkeypatch, capsys):
    assert build_parser().parse_args(["benchmark"]).precisions is None
    assert build_parser().parse_args(["benchmark", "--precisions", "fp32"]).precisions == ["fp32"]
    monkeypatch.setattr(Capabilities, "read", classmethod(lambda cls: Capabilities(OV_ALL, frozenset(ZEN4), False)))
    precisions, fidelity = benchmark_cli._precisions(None, ["openvino"])
    assert (precisions, fidelity) == (["fp32", "bf16"], ("bf16",))
    assert "--fidelity on for bf16" in capsys.readouterr().out
    assert benchmark_cli._precisions(["fp32", "int8"], ["openvino"]) == (["fp32", "int8"], ())

    monkeypatch.setattr(plan_module, "runnable_plan", JobPlan)  # this CPU's own bf16 verdict is not the point
    jobs = plan_jobs(["r50"], ["openvino"], precisions, JobSpec(fidelity_precisions=fidelity))
    assert {job.precision: job.fidelity for job in jobs} == {"fp32": False, "bf16": True}
    jobs = plan_jobs(["r50"], ["openvino"], precisions, JobSpec(fidelity=True))
    assert all(job.fidelity for job in jobs)
