"""A worker whose log cannot be written (issue 30) is recorded as a write failure naming the
folder, not as a crash, and a full or read-only folder then stops the run with one line (every
later job would fail the same way). Stand-in workers; the folder faults are simulated
(tests/disk_faults.py), plus a real 1 MB tmpfs as the logs folder where mounting is allowed."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
from disk_faults import mounted_tmpfs, read_only

from maskbench.benchmark.runner import run_benchmark
from maskbench.results.records import FAILED, OK, BenchmarkJob, read_records
from maskbench.utils.write_errors import WriteFailed

STAND_IN = (sys.executable, str(Path(__file__).with_name("stand_in_worker.py")))


def _jobs(*runtimes: str) -> list[BenchmarkJob]:
    return [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in runtimes]


def _run(out: Path, *runtimes: str, interleave: bool = False):
    return run_benchmark(_jobs(*runtimes), out, worker_command=STAND_IN, progress=False, interleave=interleave)


@pytest.mark.parametrize("interleave", [False, True])
def test_a_log_that_cannot_be_opened_is_a_write_failure_naming_the_folder(tmp_path, monkeypatch, interleave):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    read_only(monkeypatch, out / "logs", errno.EACCES)  # no permission: recorded, the others still tried
    summary = _run(out, "a", "b", interleave=interleave)
    assert [r.status for r in summary.measured] == [FAILED, FAILED]
    assert summary.measured[0].error.startswith(f"no permission to write in {out / 'logs'} (writing ")
    assert "the worker was not started (its log cannot be written)" in summary.measured[0].error


def test_a_read_only_logs_folder_stops_the_run_with_its_record_kept(tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    read_only(monkeypatch, out / "logs", errno.EROFS)
    with pytest.raises(WriteFailed) as stopped:
        _run(out, "a", "b")
    assert str(out) in str(stopped.value) and "\n" not in str(stopped.value)
    (record,) = read_records(out / "results.jsonl")  # b was not started
    assert record.status == FAILED and f"{out / 'logs'} is on a read-only file system" in record.error


def test_a_worker_that_died_on_a_full_logs_folder_is_a_write_failure_not_a_crash(tmp_path, monkeypatch):
    out = tmp_path / "out"
    logs = (out / "logs").resolve()
    real = __import__("maskbench.utils.files", fromlist=["free_bytes"]).free_bytes
    monkeypatch.setattr("maskbench.utils.files.free_bytes", lambda folder: 0 if Path(folder).resolve() == logs
                        else real(folder))
    with pytest.raises(WriteFailed):
        _run(out, "exit3", "b")  # a worker that died: its log's folder is full
    (record,) = read_records(out / "results.jsonl")
    assert record.status == FAILED and record.error.startswith(f"no space left in {out / 'logs'} ([Errno 28])")
    assert "the worker could not write its log" in record.error and "exited with code 3" in record.error


def test_a_real_full_logs_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mounts = mounted_tmpfs(tmp_path)
    (out / "logs").symlink_to(next(mounts))
    try:
        with pytest.raises(WriteFailed):
            _run(out, "ok", "flood", "b")  # flood's 2 MiB do not fit in the 1 MB tmpfs
        first, flood = read_records(out / "results.jsonl")
        assert first.status == OK
        assert flood.status == FAILED and flood.error.startswith(f"no space left in {out / 'logs'} ([Errno 28])")
    finally:
        next(mounts, None)
