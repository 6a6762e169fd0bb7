"""Faults of the benchmark's processes: a killed or stopped runner leaves no worker behind and
the rerun resumes with one record per job; a killed worker is recorded as crashed; two runs on
one folder do not both measure. Stand-in workers (tests/benchmark/stand_in_worker.py), except
for the one check that the real worker ties itself to its runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from maskbench.benchmark import lifeline
from maskbench.benchmark.preflight import JobPlan
from maskbench.benchmark.runner import run_benchmark
from maskbench.cli.main import main
from maskbench.results.records import CRASHED, OK, BenchmarkJob, read_records
from maskbench.utils.out_lock import holder_of

STAND_IN = (sys.executable, str(Path(__file__).with_name("stand_in_worker.py")))
SRC = Path(__file__).resolve().parents[2] / "src"
RUNNER = """
import json, os, sys
from pathlib import Path
from maskbench.benchmark.runner import run_benchmark
from maskbench.results.records import BenchmarkJob
jobs = [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in sys.argv[2:]]
run_benchmark(jobs, Path(sys.argv[1]), worker_command=json.loads(os.environ["STAND_IN"]), progress=False)
"""


def _jobs(*runtimes):
    return [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in runtimes]


def _start_runner(out: Path, *runtimes: str) -> subprocess.Popen:
    """``run_benchmark`` with the stand-in worker, in its own process (as `maskbench benchmark`)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "STAND_IN": json.dumps(STAND_IN)}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(out), *runtimes], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the runner ended before {what}: {process.stdout.read()}")
        time.sleep(0.05)
    pytest.fail(f"no {what} within {timeout_s} s")


def _worker_pid(out: Path, runtime: str, process: subprocess.Popen | None = None) -> int:
    def read() -> int | None:
        try:
            return int((out / "pids" / runtime).read_text())
        except (OSError, ValueError):  # not written yet, or half written
            return None

    return _wait_for(read, f"{runtime} worker", process)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _calls(out: Path) -> list[str]:
    return (out / "calls.txt").read_text().splitlines()


def _records(out: Path) -> list[tuple[str, str]]:
    return [(r.runtime, r.status) for r in read_records(out / "results.jsonl")]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_killed_runner_leaves_no_worker_and_the_rerun_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    runner = _start_runner(out, "ok", "sleep-once", "ok2")
    worker = _worker_pid(out, "sleep-once", runner)
    runner.send_signal(signal.SIGKILL)  # an OOM kill, say: nothing of the runner runs
    runner.wait()
    _wait_for(lambda: not _running(worker), "end of the orphaned worker", timeout_s=5)
    assert _records(out) == [("ok", OK)]

    summary = run_benchmark(_jobs("ok", "sleep-once", "ok2"), out, worker_command=STAND_IN, progress=False)
    printed = capsys.readouterr().out
    assert f"taking over the lock left by pid {runner.pid}" in printed and "which was killed" in printed
    assert [r.runtime for r in summary.resumed] == ["ok"]
    assert _records(out) == [("ok", OK), ("sleep-once", OK), ("ok2", OK)]  # one record per job
    assert _calls(out) == ["ok", "sleep-once", "sleep-once", "ok2"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_runner_stopped_by_sigterm_stops_its_worker_and_says_so(tmp_path):
    out = tmp_path / "out"
    runner = _start_runner(out, "ok", "sleep", "ok2")
    worker = _worker_pid(out, "sleep", runner)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(10) == 128 + signal.SIGTERM
    assert not _running(worker)  # killed with its group before the runner exited
    lines = [line for line in runner.stdout.read().splitlines() if line.strip()]
    assert lines == [f"benchmark stopped by SIGTERM: the job in progress, if any, was stopped; 1 record(s) of this "
                     f"run are in {out / 'results.jsonl'}; run the same command again to resume"]
    assert _records(out) == [("ok", OK)] and holder_of(out) is None  # the lock released on the way out


def test_a_killed_worker_is_recorded_as_crashed_and_the_others_go_on(tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def kill_the_sleeper():
        os.kill(_worker_pid(out, "sleep"), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_sleeper)
    killer.start()
    summary = run_benchmark(_jobs("ok", "sleep", "ok2"), out, worker_command=STAND_IN, progress=False)
    killer.join()
    crashed = summary.measured[1]
    assert crashed.status == CRASHED and "SIGKILL" in crashed.error and "sleeping" in crashed.error
    assert _records(out) == [("ok", OK), ("sleep", CRASHED), ("ok2", OK)]


def test_a_worker_whose_runner_is_gone_writes_no_record(tmp_path):
    """The real worker: given a runner pid that is not its parent (the runner died before the
    worker got going), it ends at once, before reading its job, and writes nothing."""
    record = tmp_path / "record.json"
    done = subprocess.run([sys.executable, "-m", "maskbench.benchmark.worker", str(tmp_path / "no-job.json"),
                           str(record), str(tmp_path), str(os.getpid() + 1_000_000)],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == lifeline.ORPHANED_EXIT_CODE, done.stderr
    assert not record.exists() and not done.stderr


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="handlers: main thread")
def test_stop_signals_are_taken_only_where_left_at_their_default():
    sighup = signal.getsignal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with lifeline.signals_stop_the_run():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is lifeline._stop
            with pytest.raises(lifeline.StoppedBySignal) as stop:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler runs at the next bytecode
            assert stop.value.code == 128 + signal.SIGTERM and stop.value.signal_name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, sighup)


def test_two_runs_on_one_folder_the_second_stops_or_waits(tmp_path, capsys, monkeypatch):
    """`maskbench benchmark` on a folder a running benchmark holds: one line and status 2; with
    --wait it runs after the first and finds every job already measured (none twice)."""
    out = tmp_path / "out"
    runtimes = ("slow", "ok2")
    monkeypatch.setattr("maskbench.benchmark.plan.plan_jobs", lambda *args, **kwargs: JobPlan(_jobs(*runtimes)))
    monkeypatch.setattr("maskbench.benchmark.runner.run_benchmark", partial(run_benchmark, worker_command=STAND_IN,
                                                                            progress=False))
    monkeypatch.setattr("maskbench.benchmark.cli._write_report", lambda records, args: None)
    argv = ["benchmark", "--models", "r50", "--runtimes", "torch", "--out", str(out)]
    first = _start_runner(out, *runtimes)
    try:
        _wait_for(lambda: (holder := holder_of(out)) is not None and holder.pid == first.pid, "lock", first)
        assert main(argv) == 2
        captured = capsys.readouterr()
        (line,) = captured.err.splitlines()
        assert line.startswith(f"error: {out} is in use by another maskbench run: pid {first.pid} (python")
        assert line.endswith("use another --out, or pass --wait")

        assert main([*argv, "--wait"]) == 0  # went on once the first had released the folder
        assert first.wait(10) == 0
    finally:
        first.kill()
        first.wait()
    printed = capsys.readouterr().out
    assert f"waiting for {out}: in use by pid {first.pid}" in printed and "resumed: 2 job(s)" in printed
    assert _records(out) == [("slow", OK), ("ok2", OK)] and _calls(out) == ["slow", "ok2"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_without_the_death_signal_a_thread_ends_the_orphan(tmp_path):
    """Where prctl is missing (not Linux), the watching thread ends a worker whose runner died."""
    leaf = ("import os, sys, time\nfrom maskbench.benchmark import lifeline\n"
            "lifeline._set_death_signal = lambda signum: False\n"
            "lifeline.tie_to_runner(int(sys.argv[1]))\nprint('tied', flush=True)\ntime.sleep(30)\n")
    middle = ("import os, subprocess, sys\n"
              f"leaf = subprocess.Popen([sys.executable, '-c', {leaf!r}, str(os.getpid())], stdout=subprocess.PIPE, "
              "stderr=subprocess.DEVNULL)\n"
              "assert leaf.stdout.readline() == b'tied\\n'\nprint(leaf.pid, flush=True)\n")
    done = subprocess.run([sys.executable, "-c", middle], env={**os.environ, "PYTHONPATH": str(SRC)},
                          capture_output=True, text=True, timeout=60)
    leaf_pid = int(done.stdout)  # the middle process (its runner) has ended
    _wait_for(lambda: not _running(leaf_pid), "end of the orphan", timeout_s=3)


def test_only_the_runner_appends_to_results_jsonl():
    """A worker hands its record over in a file; whatever it does, it cannot append a record."""
    package = SRC / "maskbench"
    appenders = {path.relative_to(package).as_posix() for path in package.rglob("*.py")
                 if "append_record(" in path.read_text(encoding="utf-8")}
    assert appenders == {"results/records.py", "benchmark/runner.py"}
