"""A GPU's peak through torch (maskbench.benchmark.peak_cuda), rehearsed on the CPU: the probe
and its cache, the probe in a process of its own (and its one line when it fails), and a GPU
row's share against the cached peak of its precision. On a GPU the same code runs cuBLAS."""

from __future__ import annotations

import json
import sys

import pytest

from maskbench.benchmark import peak_cuda
from maskbench.benchmark.efficiency import fill_efficiency
from maskbench.benchmark.peak import PrecisionPeak
from maskbench.benchmark.peak_cuda import DevicePeak, cached_device_peak, device_peak, probe_in_subprocess
from maskbench.results.records import OK, BenchmarkRecord
from maskbench.results.stats import LatencyStats

pytest.importorskip("torch")


def test_the_probe_measures_fp32_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(peak_cuda, "MATRIX", 128)
    first = device_peak("cpu", seconds=0.01)
    fp32 = first.get("fp32")
    assert fp32 is not None and fp32.native and fp32.gflops is not None and fp32.gflops > 0.1
    assert first.gflops("fp16") is None and "only fp32" in first.get("fp16").note  # off a GPU
    assert device_peak("cpu") == first == cached_device_peak("cpu")  # from the cache: not measured again
    assert DevicePeak.from_dict(json.loads(json.dumps(first.to_dict()))) == first
    assert first.cache_file() == peak_cuda.cache_path(peak_cuda.device_identity("cpu"))  # the file it came from


def test_the_probe_runs_in_a_process_of_its_own_and_a_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    line = probe_in_subprocess("cpu", matrix=128)
    assert line.startswith("peak (cpu, ") and "fp32 " in line and "GFLOP/s" in line and "fp16 -" in line
    failed = probe_in_subprocess("cuda:99", matrix=128)  # no such GPU anywhere
    assert failed.startswith("peak (cuda:99): not measured: ") and "\n" not in failed
    assert "torch" in sys.modules  # (this process had it already; the probe's own process is apart)


def test_a_gpu_row_gets_its_share_of_the_gpu_peak(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    identity = {"device_name": "Laptop GPU", "capability": "8.6", "runtime": "torch x, CUDA y"}
    monkeypatch.setattr(peak_cuda, "device_identity", lambda device: identity)
    peak = DevicePeak(**identity, matrix=peak_cuda.MATRIX, measured_at="now",
                      peaks=(PrecisionPeak("fp32", 1000.0, True, "tf32"), PrecisionPeak("fp16", 4000.0, True, "fp16")))
    path = peak_cuda.cache_path(identity)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(peak.to_dict()))
    stats = LatencyStats.from_seconds([0.01, 0.01]).to_dict()
    record = BenchmarkRecord(key="k", job={}, status=OK, runtime="torch", precision="fp16", device="cuda:0",
                             threads=2, end_to_end=stats, inference=stats)
    graph = type("Graph", (), {"onnx_paths": {"t": "g"}, "graph_target": lambda self, tensor, shape: "t"})()
    monkeypatch.setattr("maskbench.benchmark.efficiency.graph_flops", lambda path, rows: 20e9)
    loaded = type("Loaded", (), {"model": type("M", (), {"rows_after_nms": lambda self: ()})()})()
    fill_efficiency(record, graph, loaded, lambda: [(None, (1, 1))])
    # 20 GFLOP in 10 ms: 2,000 GFLOP/s, half the fp16 peak of 4,000
    assert record.achieved_gflops == pytest.approx(2000.0) and record.peak_gflops == 4000.0
    assert record.peak_share == pytest.approx(0.5)
