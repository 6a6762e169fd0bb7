"""`maskbench benchmark` end to end on small inputs: records, report, a kill mid-run and the resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.results.machine_load import other_worker_pids
from maskbench.results.records import OK, read_records
from maskbench.zoo import get_spec


def _args(out, frame):
    return ["benchmark", "--models", "rtmdet-ins-s,rtmdet-ins-t", "--runtimes", "torch", "--input-size", "256x160",
            "--warmup", "0", "--repeat", "2", "--stages", "--images", str(frame), "--out", str(out)]


def _wait_for_lines(path, count, process, timeout_s=600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"benchmark ended early: {process.stdout.read()}")
        time.sleep(0.2)
    pytest.fail("no record within the timeout")


def _wait_for_no_worker_of(out, timeout_s=5):
    """No live worker process whose command line names ``out`` (other tests' workers may run)."""
    def command_line(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:  # ended meanwhile
            return ""

    def workers():
        return [pid for pid in other_worker_pids() or [] if str(out) in command_line(pid)]

    deadline = time.monotonic() + timeout_s
    while workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not workers(), "a worker outlived its runner"


def test_killed_run_loses_nothing_and_the_rerun_resumes(tmp_path, capsys):
    """In blocks (the first record comes early); an interleaved run's kill and resume are
    tests/benchmark/test_interleave.py's, with stand-in workers."""
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    out = tmp_path / "bench"
    process = subprocess.Popen([sys.executable, "-m", "maskbench.cli.main", *_args(out, frame), "--no-interleave"],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_lines(out / "results.jsonl", 1, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the runner (its worker has a session of its own)
        process.wait()
    _wait_for_no_worker_of(out)  # the worker measuring the second model died with its runner
    (first,) = read_records(out / "results.jsonl")
    assert first.status == OK and first.alias == "rtmdet-ins-s"

    assert main([*_args(out, frame), "--no-interleave"]) == 0
    printed = capsys.readouterr().out
    assert "resumed: 1 job(s)" in printed
    # the first job is not measured again
    records = read_records(out / "results.jsonl")
    assert [(r.alias, r.status) for r in records] == [("rtmdet-ins-s", OK), ("rtmdet-ins-t", OK)]

    for record in records:
        assert "random" in record.weights and record.weights_kind == "random"
        assert record.images == 1 and record.input_hw == [160, 256] and record.detections_per_image == 100
        parts = sum(getattr(record, part)["mean_ms"] for part in ("preprocess", "inference", "postprocess"))
        assert record.end_to_end["mean_ms"] == pytest.approx(parts, rel=1e-6)
        assert record.end_to_end["count"] == 2 and record.first_call_ms > 0 and record.decode["count"] == 1
        assert set(record.stages) == set(get_spec(record.alias).family.stage_names)
        assert record.steady_rss_mb > 100 and record.peak_rss_mb >= record.steady_rss_mb
        assert record.environment["packages"]["torch"] and record.device == "cpu"
        assert record.load_average_before >= 0 and record.load_average_after >= 0
        assert record.others_busy_cores is not None and record.others_busy_cores >= 0
        assert isinstance(record.other_worker_pids, list)  # whatever else this machine runs
        detections = json.loads((out / record.detections_file).read_text())
        assert len(detections["frames"]) == 1 and len(detections["frames"][0]["results"]) == 100
    for name in ("report.md", "report.html", "results.csv", "pareto.png"):
        assert (out / name).is_file(), name


def test_unknown_model_runtime_or_precision_is_one_line_before_any_work(tmp_path, capsys):
    """Refused by the parser itself (exit status 2), before a worker starts."""
    for argv, message in ((["--models", "r52"], "argument --models: unknown model 'r52'"),
                          (["--models", "r50", "--runtimes", "tensorflow"], "unknown runtime 'tensorflow'"),
                          (["--models", "r50", "--precision", "fp8"], "unknown precision 'fp8'")):
        with pytest.raises(SystemExit) as exit_info:
            main(["benchmark", *argv, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "results.jsonl").exists()


def test_a_runtime_that_is_not_installed_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    """The worker reports the missing package with its pip command; the run itself succeeds."""
    from maskbench.benchmark.worker import run_job
    from maskbench.results.records import BenchmarkJob

    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    record = run_job(BenchmarkJob(model="r50", runtime="openvino", images=(str(frame),)), tmp_path)
    assert record.status == "failed" and "pip install" in record.error and "openvino" in record.error
    assert record.alias == "r50"
