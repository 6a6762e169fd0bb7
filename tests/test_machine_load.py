"""Was the machine quiet (maskbench/machine_load.py): the scan for other workers, the watch
around the timed calls, and the one rule that calls a record "measured under load"."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskbench.results.machine_load import QuietWatch, is_worker_command, other_worker_pids, under_load_reason
from maskbench.results.records import BenchmarkRecord, read_records

HAS_PROC = Path("/proc").is_dir()


def _record(**fields) -> BenchmarkRecord:
    record = BenchmarkRecord(key="k", job={}, status="ok", threads=2, environment={"usable_cpus": 2})
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_a_worker_is_the_process_running_it_not_one_that_mentions_it():
    assert is_worker_command(["/usr/bin/python3", "-m", "maskbench.benchmark.worker", "job.json", "r.json", "out"])
    assert is_worker_command(["python", "/src/maskbench/benchmark/worker.py", "job.json"])
    assert not is_worker_command(["bash", "-c", "python -m maskbench.benchmark.worker job.json"])
    assert not is_worker_command(["python", "-m", "maskbench.cli.main", "benchmark"])


@pytest.mark.skipif(not HAS_PROC, reason="reads /proc")
def test_the_watch_sees_another_worker_and_the_load():
    ghost = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "maskbench.benchmark.worker"])
    try:
        for _ in range(100):  # its command line shows once the kernel has finished the exec
            if b"maskbench.benchmark.worker" in Path(f"/proc/{ghost.pid}/cmdline").read_bytes():
                break
            time.sleep(0.02)
        watch = QuietWatch.start()
        assert ghost.pid in other_worker_pids()
        watch.stop()
    finally:
        ghost.kill()
        ghost.wait()
    assert ghost.pid in watch.other_worker_pids()
    assert watch.load_before is not None and watch.load_after is not None
    assert ghost.pid not in other_worker_pids()


@pytest.mark.parametrize(("fields", "reason"), [
    ({"load_average_before": 1.9, "load_average_after": 2.5, "other_worker_pids": []}, None),
    ({"load_average_before": 2.6, "load_average_after": 1.0, "other_worker_pids": []},
     "1-min load average 2.6 > 2.5 (2 usable CPUs + 0.5)"),
    ({"load_average_before": 3.0, "load_average_after": 3.0, "threads": 4, "other_worker_pids": []}, None),
    ({"load_average_before": 0.1, "load_average_after": 0.2, "other_worker_pids": [41, 42]},
     "another maskbench worker was running (pid 41, 42)"),
    ({"load_average_before": 4.0, "load_average_after": 4.0, "other_worker_pids": [41]},
     "1-min load average 4.0 > 2.5 (2 usable CPUs + 0.5); another maskbench worker was running (pid 41)"),
    ({}, None),  # a record from before these fields: unknown is not marked
])
def test_under_load_is_a_load_above_the_cores_or_another_worker(fields, reason):
    assert under_load_reason(_record(**fields)) == reason


def test_records_without_the_load_fields_still_read(tmp_path):
    old = _record().to_dict()
    for name in ("load_average_before", "load_average_after", "other_worker_pids"):
        del old[name]
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(old) + "\n")
    (record,) = read_records(path)
    assert record.load_average_before is None and record.other_worker_pids is None
    assert under_load_reason(record) is None
