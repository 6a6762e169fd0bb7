"""The peak probe (maskbench.benchmark.peak): each precision is measured through OpenVINO and
checked in its execution graph, or reported as not native; the cache is per machine and thread
count, and a busy machine's probe is not kept."""

from __future__ import annotations

import dataclasses
import json

import pytest

from maskbench.benchmark import peak as peak_module
from maskbench.benchmark import peak_cuda, run_peaks
from maskbench.benchmark.peak import MachinePeak, PrecisionPeak, cached_peak, machine_peak, probe_peak

pytest.importorskip("openvino")


@pytest.fixture
def small_probe(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(peak_module, "MATRIX", 256)  # the same graphs, a 64th of the work


def test_each_precision_runs_natively_or_says_it_does_not(small_probe):
    import openvino as ov

    capabilities = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    measured = probe_peak(threads=1, seconds=0.02)
    assert [p.precision for p in measured.peaks] == ["fp32", "bf16", "int8"]
    assert measured.matrix == 256 and measured.threads == 1 and measured.runtime.startswith("openvino ")
    fp32, bf16, int8 = measured.peaks
    assert fp32.native and fp32.runtime_precision == "f32" and fp32.gflops > 0
    for result, capability, ran_in in ((bf16, "BF16", {"bf16"}), (int8, "INT8", {"u8", "i8"})):
        if capability in capabilities:  # measured, and the execution graph shows it ran that way
            assert result.native and result.runtime_precision in ran_in and result.gflops > 0, result
        else:  # said so, not measured as an emulation
            assert not result.native and result.gflops is None and "not native" in result.note, result
    assert MachinePeak.from_dict(json.loads(json.dumps(measured.to_dict()))) == measured


def _fake(load: float | None) -> MachinePeak:
    return MachinePeak(cpu="cpu", flags_sha256="f", runtime="openvino x", capabilities=("FP32",), threads=2,
                       matrix=256, load_average=load, measured_at="now",
                       peaks=(PrecisionPeak("fp32", 100.0, True, "f32", "k"), PrecisionPeak("bf16", None, False)))


def test_cached_per_thread_count_and_not_when_busy(small_probe, monkeypatch):
    probes = []
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: probes.append(threads) or _fake(0.0))
    assert cached_peak(2) is None
    first = machine_peak(2)
    assert machine_peak(2) == first == cached_peak(2) and probes == [2]  # probed once, then read
    assert first.cache_file() == peak_module.cache_path(2) and first.cache_file().exists()
    assert cached_peak(3) is None
    assert machine_peak(2, refresh=True) == first and probes == [2, 2]
    assert first.gflops("fp32") == 100.0 and first.gflops("bf16") is None and first.gflops("int8") is None

    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: _fake(1000.0))
    busy = machine_peak(4)
    assert busy.load_average == 1000.0 and cached_peak(4) is None  # returned, not kept

    # a load average too slow to see it, but other processes kept a core busy during the probe
    others = dataclasses.replace(_fake(0.0), others_busy_cores=0.9)
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: others)
    assert machine_peak(5) == others and cached_peak(5) is None
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: dataclasses.replace(others, others_busy_cores=0.1))
    assert machine_peak(6).others_busy_cores == 0.1 and cached_peak(6) is not None


def test_the_run_says_when_its_peak_was_not_kept(small_probe, monkeypatch):
    from maskbench.results.records import BenchmarkJob

    jobs = [BenchmarkJob(model="r50", runtime="openvino", threads=2)]
    busy = dataclasses.replace(_fake(0.5), others_busy_cores=0.9)
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: busy)
    busy_line, = run_peaks.peaks_for_jobs(jobs)
    assert "load average 0.5, other processes kept 0.90 cores busy): not kept" in busy_line, busy_line
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: _fake(0.5))
    quiet_line, = run_peaks.peaks_for_jobs(jobs)
    assert "fp32 100 GFLOP/s" in quiet_line and "not kept" not in quiet_line


def test_a_damaged_cache_file_is_measured_again(small_probe, monkeypatch):
    monkeypatch.setattr(peak_module, "probe_peak", lambda threads: _fake(0.0))
    path = peak_module.cache_path(2)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert cached_peak(2) is None
    assert machine_peak(2) == _fake(0.0) and cached_peak(2) == _fake(0.0)
    changed = dataclasses.replace(_fake(0.0), measured_at="later")
    path.write_text(json.dumps(changed.to_dict()))
    assert cached_peak(2) == changed


def test_a_run_probes_once_per_thread_count_of_its_cpu_jobs_and_once_per_gpu(monkeypatch):
    from maskbench.results.records import BenchmarkJob

    asked = []

    def fake(threads):
        asked.append(threads)
        if threads == 3:
            raise RuntimeError("no CPU plugin\nmore")
        return _fake(0.0)

    monkeypatch.setattr(peak_module, "machine_peak", fake)
    monkeypatch.setattr(peak_cuda, "probe_in_subprocess", lambda device: f"gpu {device}")
    monkeypatch.setattr(peak_module, "default_threads", lambda: 2)
    jobs = [BenchmarkJob(model="r50", runtime=runtime, threads=threads, device=device)
            for runtime, threads, device in (("torch", 5, None), ("openvino", None, None), ("onnxruntime", 2, "cpu"),
                                             ("openvino", 3, None), ("onnxruntime-cuda", 7, "cuda:0"))]
    lines = run_peaks.peaks_for_jobs(jobs)
    assert asked == [2, 3, 5]  # every CPU row, eager ones too; GPU rows get no share of a CPU peak
    assert lines[0] == "gpu cuda:0"  # the GPU's own peak
    assert lines[1].startswith("peak (2 threads") and "fp32 100 GFLOP/s, bf16 -" in lines[1]
    assert lines[2] == "peak (3 threads): not measured: RuntimeError: no CPU plugin"
