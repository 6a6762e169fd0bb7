"""Achieved GFLOP/s and share of peak: the pure function, the worker's filling of a record (a
tiny graph, a cached peak) and the report's column."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from maskbench.benchmark.efficiency import Efficiency, efficiency, fill_efficiency
from maskbench.benchmark.peak import MachinePeak, PrecisionPeak, cache_path
from maskbench.report.tables import results_table
from maskbench.results.records import OK, BenchmarkRecord
from maskbench.results.stats import LatencyStats

PEAK = MachinePeak(cpu="cpu", flags_sha256="f", runtime="openvino x", capabilities=("FP32", "INT8"), threads=2,
                   matrix=1024, load_average=0.0, measured_at="now",
                   peaks=(PrecisionPeak("fp32", 40.0, True, "f32"), PrecisionPeak("bf16", None, False),
                          PrecisionPeak("int8", 160.0, True, "u8")))


def test_the_figures():
    assert efficiency(2e9, 100.0, "fp32", PEAK) == Efficiency(2.0, 20.0, 40.0, 0.5)
    assert efficiency(2e9, 100.0, "int8", PEAK) == Efficiency(2.0, 20.0, 160.0, 0.125)
    assert efficiency(2e9, 100.0, "bf16", PEAK) == Efficiency(2.0, 20.0, None, None)  # bf16 not native here
    assert efficiency(2e9, 100.0, "fp32", None) == Efficiency(2.0, 20.0, None, None)
    assert efficiency(None, 100.0, "fp32", PEAK) == Efficiency(None, None, 40.0, None)
    assert efficiency(8e9, 100.0, "fp32", PEAK) == Efficiency(8.0, 80.0, 40.0, None)  # above the peak: no share


def _record(**fields) -> BenchmarkRecord:
    stats = LatencyStats.from_seconds([0.1, 0.1]).to_dict()
    fields = {"end_to_end": stats, "inference": stats, **fields}
    return BenchmarkRecord(key="k", job={}, status=OK, runtime="openvino", precision="fp32", device="cpu", threads=2,
                           **fields)


def test_the_worker_fills_the_record_from_the_graph_and_the_cached_peak(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    path = cache_path(2)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(PEAK.to_dict()))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [100, 1000])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.zeros((1000, 10_000), np.float32), "w")])
    onnx_path = tmp_path / "tiny.onnx"
    save(helper.make_model(graph), str(onnx_path))
    runtime = SimpleNamespace(onnx_paths={"target": onnx_path}, graph_target=lambda tensor, shape: "target")
    loaded = SimpleNamespace(model=SimpleNamespace(rows_after_nms=lambda: (100,)))
    record = _record()
    fill_efficiency(record, runtime, loaded, lambda: [(None, (1, 1))] * 3)
    # 2 x 100 x 1000 x 10000 = 2 GFLOP in a 100 ms median: 20 GFLOP/s, half the fp32 peak of 40
    assert (record.gflop, record.achieved_gflops, record.peak_gflops, record.peak_share) == (2.0, 20.0, 40.0, 0.5)
    assert path.exists()
    fast = _record(inference=LatencyStats.from_seconds([0.01, 0.01]).to_dict())  # 200 GFLOP/s: above the peak
    fill_efficiency(fast, runtime, loaded, lambda: [(None, (1, 1))])
    assert fast.achieved_gflops == pytest.approx(200.0) and fast.peak_share is None
    assert not path.exists()  # a disturbed probe's peak is dropped: the next run probes again


def test_frames_of_two_sizes_count_each_size_once_and_average_over_the_frames(monkeypatch):
    """Keep-ratio frames of two padded sizes run two graphs: the row's FLOPs are the mean per
    frame (two frames of the 3-GFLOP graph, one of the 6-GFLOP graph: 4 GFLOP), each graph
    counted once; a runtime that cannot say it leaves the figures empty, the timings stand."""
    from maskbench.benchmark import efficiency as module

    counted = []
    monkeypatch.setattr(module, "graph_flops", lambda path, rows: counted.append(path) or {"a": 3e9, "b": 6e9}[path])
    monkeypatch.setattr(module, "cached_peak", lambda threads: PEAK)
    runtime = SimpleNamespace(onnx_paths={"A": "a", "B": "b"}, graph_target=lambda tensor, shape: tensor)
    loaded = SimpleNamespace(model=SimpleNamespace(rows_after_nms=lambda: ()))
    record = _record()
    fill_efficiency(record, runtime, loaded, lambda: [("A", (1, 1)), ("B", (1, 1)), ("A", (1, 1))])
    assert counted == ["a", "b"] and record.gflop == pytest.approx(4.0) and record.peak_share == pytest.approx(1.0)
    broken = SimpleNamespace(onnx_paths={"A": "a"}, graph_target=lambda tensor, shape: "C", describe=lambda: "x")
    missing = _record()
    fill_efficiency(missing, broken, loaded, lambda: [("C", (1, 1))])
    assert missing.gflop is None and missing.peak_share is None and missing.inference


def test_the_report_column_appears_with_the_figures():
    plain = results_table([_record()])
    assert not any("GFLOP" in header for header in plain.headers)
    table = results_table([_record(gflop=2.0, achieved_gflops=20.0, peak_gflops=40.0, peak_share=0.5),
                           _record(gflop=2.0, achieved_gflops=20.0)])
    column = table.headers.index("GFLOP/s (of peak)")
    assert [row[column] for row in table.rows] == ["20 (50 %)", "20"]


@pytest.mark.parametrize("runtime, rel", [("openvino", 1e-9), ("torch", 0.01)])
def test_a_benchmark_job_gets_its_figures(runtime, rel, rtmdet_t, perf_cache, monkeypatch):
    """The worker end to end (RTMDet-Ins-t at 320x192, one frame, one timed call): the record's
    FLOPs are the export's count (OpenVINO: the very graph; eager PyTorch, which has no graph:
    one eager forward under torch's counter, equal here because random weights keep the NMS
    bound's 100 detections), its share is against the cached peak of its thread count."""
    pytest.importorskip(runtime)
    from maskbench.benchmark.worker import run_job
    from maskbench.data.sources import embedded_nuscenes, find_images
    from maskbench.export.flops import count_flops
    from maskbench.results.records import BenchmarkJob

    from .conftest import MODEL, SIZE

    monkeypatch.setenv("MASKBENCH_CACHE", str(perf_cache))  # the export is the fixture's, from the cache
    path = cache_path(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    roomy = {**PEAK.to_dict(), "threads": 1, "peaks": [{**PrecisionPeak("fp32", 1e5, True, "f32").__dict__}]}
    path.write_text(json.dumps(roomy))  # far above what the row reaches: it gets a share
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    job = BenchmarkJob(model=MODEL, runtime=runtime, input_size=SIZE, threads=1, warmup=0, repeat=1,
                       images=(str(frame),), cameras=("CAM_FRONT",))
    record = run_job(job, perf_cache / f"out-{runtime}")
    assert record.status == OK, record.error
    assert record.gflop == pytest.approx(count_flops(rtmdet_t[3], [100]).total / 1e9, rel=rel)
    median_s = record.inference["p50_ms"] / 1000.0
    assert record.achieved_gflops == pytest.approx(record.gflop / median_s)
    assert record.peak_gflops == 1e5 and record.peak_share == pytest.approx(record.achieved_gflops / 1e5)


def test_the_eager_count_leaves_the_model_as_it_was():
    torch = pytest.importorskip("torch")
    from maskbench.benchmark.efficiency import eager_flops

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)

        def forward(self, images, shapes):
            return self.conv(images)

    model = Tiny()
    assert eager_flops(model, torch.zeros(1, 3, 10, 20), (10, 20)) == 2 * 10 * 20 * 8 * 3 * 9
    assert model.conv.weight.requires_grad
