"""Out of memory, named (issue 30): a worker killed with SIGKILL at its memory limit, or after the
kernel's OOM kill counter rose, is recorded as "out of memory" with its peak RSS and the memory
that was free; a SIGKILL without that evidence stays "crashed". The stand-in worker's ``oom``
job fills an RLIMIT_AS of its own size + 256 MiB and then dies of SIGKILL, so the verdict is the
same on every machine; the evidence files are fakes in the unit tests."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from maskbench.benchmark import oom
from maskbench.benchmark.oom import MemoryWatch, cgroup_files, out_of_memory_reason
from maskbench.benchmark.runner import run_benchmark
from maskbench.report.tables import failure_lines
from maskbench.results.records import CRASHED, OK, OUT_OF_MEMORY, BenchmarkJob

STAND_IN = (sys.executable, str(Path(__file__).with_name("stand_in_worker.py")))
LINUX = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc")


def _jobs(*runtimes: str) -> list[BenchmarkJob]:
    return [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in runtimes]


@LINUX
@pytest.mark.parametrize("interleave", [False, True])
def test_a_worker_killed_at_its_memory_limit_is_out_of_memory(tmp_path, monkeypatch, interleave):
    monkeypatch.setattr(oom, "SAMPLE_S", 0.1)
    summary = run_benchmark(_jobs("ok", "oom", "crash"), tmp_path / "out", worker_command=STAND_IN, progress=False,
                            interleave=interleave)
    by_runtime = {record.runtime or record.job["runtime"]: record for record in summary.records}
    record = by_runtime["oom"]
    assert record.status == OUT_OF_MEMORY, record.error
    assert "killed (SIGKILL) at its memory limit: peak RSS " in record.error and "MiB (RLIMIT_AS), " in record.error
    assert record.peak_rss_mb is not None and record.peak_rss_mb > 200  # the 256 MiB it filled
    assert record.free_memory_mb is not None and record.free_memory_mb > 0
    assert f"peak RSS {record.peak_rss_mb:,.0f} MiB" in record.error and "holding" in record.error
    if interleave:
        assert "it ran beside 1 other prepared job(s): pass a smaller --max-resident" in record.error
    assert by_runtime["crash"].status == CRASHED and "SIGKILL: by hand" in by_runtime["crash"].error
    assert by_runtime["ok"].status == OK
    (line,) = [line for line in failure_lines(summary.records) if " / oom / " in line]
    assert line.startswith("r50 / oom / fp32: out of memory: the worker was killed (SIGKILL) at its memory limit")


def _watch(tmp_path: Path, before: int, after: int, peak_kib: int, limit: str = "unlimited") -> MemoryWatch:
    """A watch over a fake /proc: machine OOM kill counter ``before`` at the start, ``after`` at the end."""
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "status").write_text(f"Name:\tworker\nVmHWM:\t{peak_kib} kB\n")
    (proc / "7" / "limits").write_text(f"Max address space         {limit}            unlimited            bytes\n")
    (proc / "meminfo").write_text("MemTotal:  4194304 kB\nMemAvailable:  102400 kB\n")
    (proc / "vmstat").write_text(f"pgfault 1\noom_kill {before}\n")
    watch = MemoryWatch(7, None, proc=proc)
    watch.oom_kills_before = watch.oom_kills()
    watch.look()
    (proc / "vmstat").write_text(f"pgfault 1\noom_kill {after}\n")
    return watch


def test_the_kernels_oom_kill_counter_is_the_evidence(tmp_path):
    reason = out_of_memory_reason(-signal.SIGKILL, _watch(tmp_path, 3, 4, 1024 * 1024))
    assert reason == ("the worker was killed (SIGKILL) by the kernel's OOM killer (the machine's (/proc/vmstat) "
                      "oom_kill counter 3 -> 4): peak RSS 1,024 MiB of 4,096 MiB (the machine's memory), 100 MiB free")


def test_without_evidence_a_sigkill_is_no_out_of_memory(tmp_path):
    assert out_of_memory_reason(-signal.SIGKILL, _watch(tmp_path, 3, 3, 1024 * 1024)) is None  # 1 GiB of 4
    assert out_of_memory_reason(-signal.SIGSEGV, _watch(tmp_path / "b", 3, 4, 1024 * 1024)) is None
    near = _watch(tmp_path / "c", 3, 3, 950 * 1024, limit=str(1000 << 20))
    reason = out_of_memory_reason(-signal.SIGKILL, near)
    assert reason is not None and "at its memory limit: peak RSS 950 MiB of 1,000 MiB (RLIMIT_AS)" in reason


@pytest.mark.parametrize(("line", "folder", "names"), [
    ("0::/jobs/a", "jobs/a", ("memory.events", "oom_kill 2\n")),
    ("4:memory:/jobs/a", "memory/jobs/a", ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"))])
def test_cgroup_v2_and_v1_counters_are_found(tmp_path, line, folder, names):
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text(f"9:pids:/\n{line}\n")
    (root / folder).mkdir(parents=True)
    (root / folder / names[0]).write_text(names[1])
    files = cgroup_files(7, proc, root)
    assert files is not None and files.oom_kills() == 2
