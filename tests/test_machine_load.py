"""Was the machine quiet (maskbench/machine_load.py): the scan for other workers, the watch
around the timed calls, and the one rule that calls a record "measured under load"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskbench.results.machine_load import (
    CpuTimes,
    QuietWatch,
    is_worker_command,
    other_worker_pids,
    under_load_reason,
)
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
    ({"others_busy_cores": 0.2}, None),
    ({"others_busy_cores": 0.8},
     "other processes kept 0.80 cores busy during its calls (> 0.25: 0 free + 0.25)"),
    ({"others_busy_cores": 0.8, "threads": 1}, None),  # the job left a core free for them
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


# /proc/stat as proc(5) lays it out: the total, then one line per CPU (user nice system idle iowait
# irq softirq steal guest guest_nice, in USER_HZ ticks), then counters that are not CPUs.
PROC_STAT = """cpu  700 70 300 9000 50 10 20 30 0 0
cpu0 100 10 50 3000 10 1 2 3 0 0
cpu1 200 20 50 3000 20 2 3 4 0 0
cpu2 400 40 200 3000 20 7 15 23 0 0
intr 12345 0 0
ctxt 678
btime 1700000000
processes 42
"""


def test_the_cores_busy_time_is_read_for_the_cores_this_process_may_use(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(PROC_STAT)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    times = CpuTimes.now(stat)
    # cpu0: 100+10+50 + 1+2+3 = 166; cpu1: 200+20+50 + 2+3+4 = 279; idle, iowait and cpu2 left out
    assert times is not None and times.busy == pytest.approx((166 + 279) / os.sysconf("SC_CLK_TCK"))
    assert CpuTimes.now(tmp_path / "absent") is None  # no /proc/stat: not checked


def test_others_are_the_busy_time_this_process_did_not_spend():
    before, after = CpuTimes(wall=10.0, busy=100.0, own=50.0), CpuTimes(wall=12.0, busy=104.0, own=53.0)
    assert before.others_busy_cores(after) == pytest.approx(0.5)  # 4 s busy, 3 of them ours, in 2 s
    assert before.others_busy_cores(CpuTimes(wall=12.0, busy=101.0, own=53.0)) == 0.0  # ticks' rounding
    assert before.others_busy_cores(before) == 0.0


def test_the_watch_counts_other_processes_within_the_calls_only(monkeypatch):
    """A neighbour busy between the calls (an interleaved peer's turn) is not counted."""
    readings = iter([CpuTimes(wall=0.0, busy=0.0, own=0.0), CpuTimes(wall=1.0, busy=1.5, own=1.0),  # call 1
                     CpuTimes(wall=5.0, busy=9.0, own=1.0), CpuTimes(wall=6.0, busy=10.0, own=2.0)])  # call 2
    monkeypatch.setattr(CpuTimes, "now", classmethod(lambda cls, stat=None: next(readings)))
    watch = QuietWatch()
    for _ in range(2):
        with watch.during_call():
            pass
    assert watch.others_busy_cores() == pytest.approx(0.25)  # 0.5 core-s of others in 2 s of calls
    monkeypatch.setattr(CpuTimes, "now", classmethod(lambda cls, stat=None: None))
    with watch.during_call():
        pass
    assert watch.others_busy_cores() is None  # unreadable once: not known


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (proc(5): fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux's /proc/stat")
def test_a_busy_neighbour_shows_and_our_own_work_does_not():
    def spin(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass

    start = CpuTimes.now()
    time.sleep(0.3)
    baseline = start.others_busy_cores(CpuTimes.now())
    if baseline > 0.3:
        pytest.skip(f"other work keeps {baseline:.2f} cores busy here: no quiet baseline to compare with")
    start = CpuTimes.now()
    spin(0.6)
    ours = start.others_busy_cores(CpuTimes.now())
    assert ours < baseline + 0.3, (baseline, ours)  # our own spinning is not someone else's

    neighbour = subprocess.Popen([sys.executable, "-c", "import time\nd = time.perf_counter() + 3\n"
                                  "while time.perf_counter() < d: pass"])
    try:
        time.sleep(0.3)  # its interpreter started
        start, its_start = CpuTimes.now(), _cpu_seconds(neighbour.pid)
        spin(0.6)
        end, its_end = CpuTimes.now(), _cpu_seconds(neighbour.pid)
    finally:
        neighbour.kill()
        neighbour.wait()
    others_s = start.others_busy_cores(end) * (end.wall - start.wall)
    assert its_end - its_start > 0.2 and others_s >= 0.8 * (its_end - its_start) - 0.03, (others_s, its_end - its_start)
