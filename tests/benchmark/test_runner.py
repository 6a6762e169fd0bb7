"""The runner's process handling, with stand-in workers (no model is built here)."""

import json
import sys
from pathlib import Path

import pytest

from maskbench.benchmark.runner import run_benchmark
from maskbench.results.records import CRASHED, FAILED, OK, TIMEOUT, BenchmarkJob, read_records

STAND_IN = Path(__file__).with_name("stand_in_worker.py")  # for `python -m maskbench.benchmark.worker`


@pytest.fixture
def fake_worker():
    return (sys.executable, str(STAND_IN))


def _jobs(*runtimes):
    return [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in runtimes]


def _calls(out):
    path = out / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_each_failure_is_recorded_with_its_reason_and_the_rest_go_on(tmp_path, fake_worker):
    out = tmp_path / "out"
    summary = run_benchmark(_jobs("crash", "ok", "exit3", "error", "hang", "ok2"), out, timeout_s=5,
                            worker_command=fake_worker, progress=False)
    by_runtime = {r.runtime: r for r in summary.measured}
    assert by_runtime["crash"].status == CRASHED
    assert "SIGKILL" in by_runtime["crash"].error and "segfault-like death" in by_runtime["crash"].error
    assert by_runtime["exit3"].status == CRASHED and "code 3" in by_runtime["exit3"].error
    assert "bad things" in by_runtime["exit3"].error
    assert by_runtime["error"].status == FAILED and by_runtime["error"].error == "this runtime cannot run this model"
    assert by_runtime["hang"].status == TIMEOUT and "5 s" in by_runtime["hang"].error
    assert by_runtime["ok"].status == OK and by_runtime["ok2"].status == OK
    # the failure records still describe the model, from the zoo
    assert by_runtime["crash"].alias == "r50" and by_runtime["crash"].zoo_mask_ap == pytest.approx(34.7)
    # every record reached the JSONL file, in order
    assert [r.runtime for r in read_records(out / "results.jsonl")] == ["crash", "ok", "exit3", "error", "hang", "ok2"]


def test_a_rerun_resumes_finished_jobs_and_retries_failed_ones(tmp_path, fake_worker):
    out = tmp_path / "out"
    run_benchmark(_jobs("ok", "error", "ok2"), out, worker_command=fake_worker, progress=False)
    assert len(_calls(out)) == 3
    again = run_benchmark(_jobs("ok", "error", "ok2"), out, worker_command=fake_worker, progress=False)
    assert [r.runtime for r in again.resumed] == ["ok", "ok2"]
    assert [r.runtime for r in again.measured] == ["error"]
    assert len(_calls(out)) == 4
    assert {r.runtime: r.status for r in again.records} == {"ok": OK, "error": FAILED, "ok2": OK}
    run_benchmark(_jobs("ok"), out, worker_command=fake_worker, progress=False, resume=False)
    assert len(_calls(out)) == 5


def test_job_and_log_files_are_kept_for_inspection(tmp_path, fake_worker):
    out = tmp_path / "out"
    run_benchmark(_jobs("exit3"), out, worker_command=fake_worker, progress=False)
    (job_file,) = [p for p in (out / "jobs").iterdir() if not p.name.endswith(".record.json")]
    assert json.loads(job_file.read_text())["runtime"] == "exit3"
    (log,) = (out / "logs").iterdir()
    assert "bad things" in log.read_text()
