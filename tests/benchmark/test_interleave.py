"""Interleaved timing with stand-in workers (no model is built): the round order, one job timing
at a time, a crash or a hang of one job mid-round, resume, groups, and the memory bound."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskbench.benchmark.interleave import default_max_resident, split_groups
from maskbench.benchmark.runner import run_benchmark
from maskbench.results.intervals import compare_records
from maskbench.results.records import CRASHED, FAILED, OK, TIMEOUT, BenchmarkJob, read_records

STAND_IN = Path(__file__).with_name("stand_in_worker.py")
WORKER = (sys.executable, str(STAND_IN))


def _jobs(*runtimes, repeat=3):
    return [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, repeat=repeat, images=("x.jpg",))
            for r in runtimes]


def _passes(out):
    """[(runtime, start, end)] in the order the passes started."""
    lines = [line.split() for line in (out / "passes.txt").read_text().splitlines()]
    starts = [(name, float(t)) for name, what, t in lines if what == "start"]
    ends = [(name, float(t)) for name, what, t in lines if what == "end"]
    passes = []
    for name, start in starts:
        end = next((t for n, t in ends if n == name and t >= start), None)
        if end is not None:
            ends.remove((name, end))
        passes.append((name, start, end))
    return passes


def _run(jobs, out, **kwargs):
    return run_benchmark(jobs, out, worker_command=WORKER, progress=False, interleave=True, **kwargs)


def test_rounds_alternate_one_job_at_a_time_and_records_say_so(tmp_path):
    out = tmp_path / "out"
    summary = _run(_jobs("a", "b", "c"), out, timeout_s=20)
    passes = _passes(out)
    assert [name for name, _, _ in passes] == ["a", "b", "c"] * 3
    for (_, _, end), (_, next_start, _) in zip(passes, passes[1:]):
        assert end <= next_start  # exactly one job timing at any moment
    records = {r.runtime: r for r in summary.measured}
    assert all(r.status == OK and r.timing == "interleaved" and r.round_ms == [11.0, 12.0, 13.0]
               for r in records.values())
    assert len({r.interleave_group for r in records.values()}) == 1
    assert sorted(records["a"].compared_with) == sorted([records["b"].key, records["c"].key])
    assert compare_records(records["a"], records["b"]).paired
    # every job was prepared before the first timed pass (calls.txt: one line per worker start)
    assert (out / "calls.txt").read_text().splitlines() == ["a", "b", "c"]


def test_a_round_alternates_call_by_call(tmp_path):
    """A worker that announces N calls per pass (the real one: its frames) gets N turns per round,
    alternating with the others call by call: A1 B1 A2 A3 | A1 B1 A2 A3 (B has one call a pass)."""
    out = tmp_path / "out"
    summary = _run(_jobs("calls-3", "b", repeat=2), out, timeout_s=20)
    assert [name for name, _, _ in _passes(out)] == ["calls-3", "b", "calls-3", "calls-3"] * 2
    assert [r.status for r in summary.measured] == [OK, OK]


def test_a_crash_mid_round_is_recorded_and_the_others_finish(tmp_path):
    out = tmp_path / "out"
    summary = _run(_jobs("a", "die-in-round-2", "c", "error"), out, timeout_s=20)
    records = {r.runtime: r for r in summary.measured}
    crashed = records["die-in-round-2"]
    assert crashed.status == CRASHED and "SIGKILL" in crashed.error and "dying in round 2" in crashed.error
    assert records["error"].status == FAILED  # failed while preparing: its own record, as in block mode
    assert records["a"].status == OK and records["a"].round_ms == [11.0, 12.0, 13.0]
    assert records["c"].status == OK and records["c"].round_ms == [11.0, 12.0, 13.0]
    names = [name for name, _, _ in _passes(out)]
    assert names == ["a", "die-in-round-2", "c", "a", "die-in-round-2", "c", "a", "c"]
    assert [r.runtime for r in read_records(out / "results.jsonl")] == ["error", "die-in-round-2", "a", "c"]


def test_a_job_past_its_timeout_is_stopped_and_the_others_finish(tmp_path):
    out = tmp_path / "out"
    summary = _run(_jobs("a", "hang-in-round-2"), out, timeout_s=3)
    records = {r.runtime: r for r in summary.measured}
    assert records["hang-in-round-2"].status == TIMEOUT and "3 s" in records["hang-in-round-2"].error
    assert records["a"].status == OK and len(records["a"].round_ms) == 3


def test_a_rerun_skips_ok_jobs_and_interleaves_the_rest(tmp_path):
    out = tmp_path / "out"
    _run(_jobs("a", "die-in-round-2", "c", "error"), out, timeout_s=20)
    (out / "passes.txt").unlink()
    jobs = _jobs("a", "b", "c", "error", "d")  # "die-in-round-2" dropped, "b" and "d" new
    again = _run(jobs, out, timeout_s=20)
    assert sorted(r.runtime for r in again.resumed) == ["a", "c"]
    assert [name for name, _, _ in _passes(out)] == ["b", "d"] * 3
    assert {r.runtime: r.status for r in again.measured} == {"b": OK, "d": OK, "error": FAILED}


def test_max_resident_splits_the_run_into_groups(tmp_path):
    out = tmp_path / "out"
    summary = _run(_jobs("a", "b", "c", repeat=2), out, timeout_s=20, max_resident=2)
    assert [name for name, _, _ in _passes(out)] == ["a", "b", "a", "b", "c", "c"]
    records = {r.runtime: r for r in summary.measured}
    assert records["a"].interleave_group == records["b"].interleave_group != records["c"].interleave_group
    assert records["c"].compared_with == []
    assert not compare_records(records["a"], records["c"]).paired


def test_without_interleave_the_jobs_run_in_blocks(tmp_path):
    out = tmp_path / "out"
    summary = run_benchmark(_jobs("a", "b"), out, worker_command=WORKER, progress=False)
    assert not (out / "passes.txt").exists()
    assert all(r.status == OK and r.timing is None for r in summary.measured)


@pytest.mark.parametrize(("count", "limit", "sizes"), [(7, 3, [3, 2, 2]), (3, 2, [2, 1]), (4, 9, [4]), (0, 2, [])])
def test_groups_are_near_equal(count, limit, sizes):
    assert [len(g) for g in split_groups(_jobs(*map(str, range(count))), limit)] == sizes


def test_the_default_bound_comes_from_free_memory(tmp_path):
    meminfo = tmp_path / "meminfo"
    jobs = _jobs("a", "b", "c", "d")
    meminfo.write_text("MemTotal: 8000000 kB\nMemAvailable:    6000000 kB\n")  # ~5.7 GiB: two r50 jobs (1.7 GiB
    assert default_max_resident(jobs, meminfo) == 2  # each), one preparing at 1.35x, not three
    meminfo.write_text("MemTotal: 8000000 kB\nMemAvailable:    3000000 kB\n")  # ~2.9 GiB: one (was two before the
    assert default_max_resident(jobs, meminfo) == 1  # guess was checked against the measured RSS, issue 30)
    meminfo.write_text("MemAvailable:    100 kB\n")
    assert default_max_resident(jobs, meminfo) == 1
    meminfo.write_text("MemAvailable:    900000000 kB\n")
    assert default_max_resident(jobs, meminfo) == 4
    assert default_max_resident(jobs, tmp_path / "absent") == 4


_RUNNER_TEMPLATE = """
import sys
from pathlib import Path
from maskbench.benchmark.runner import run_benchmark
from maskbench.results.records import BenchmarkJob
jobs = [BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime=r, images=("x.jpg",)) for r in sys.argv[2:]]
run_benchmark(jobs, Path(sys.argv[1]), worker_command=(sys.executable, {}), progress=False, interleave=True,
              timeout_s=60)
"""
RUNNER = _RUNNER_TEMPLATE.format(repr(str(STAND_IN)))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_stopped_runner_kills_every_resident_worker(tmp_path):
    out = tmp_path / "out"
    src = Path(__file__).resolve().parents[2] / "src"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(out), "a", "hang-in-round-2", "c"],
                              env={**os.environ, "PYTHONPATH": str(src)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not ((out / "passes.txt").exists() and (out / "passes.txt").read_text().count("start") >= 5):
        assert time.monotonic() < deadline and runner.poll() is None, "the hang's second round never started"
        time.sleep(0.05)
    pids = [int((out / "pids" / name).read_text()) for name in ("a", "hang-in-round-2", "c")]
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(10) == 128 + signal.SIGTERM
    with runner.stdout:
        assert "the jobs in progress, if any, were stopped" in runner.stdout.read()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        assert state == "Z", f"worker {pid} outlived its runner"
    assert not (out / "results.jsonl").exists()


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("flags", "models", "expected"), [([], "r50,r101", True), ([], "r50", False),
                                                           (["--no-interleave"], "r50,r101", False),
                                                           (["--interleave", "--max-resident", "1"], "r50", True)])
def test_the_command_interleaves_two_or_more_jobs_by_default(tmp_path, monkeypatch, flags, models, expected):
    from maskbench.benchmark import runner
    from maskbench.cli.main import main
    from maskbench.data.sources import embedded_nuscenes, find_images

    seen = {}

    def capture(jobs, out, **kwargs):
        seen.update(kwargs)
        raise _Stop()

    monkeypatch.setattr(runner, "run_benchmark", capture)
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    with pytest.raises(_Stop):
        main(["benchmark", "--models", models, "--runtimes", "torch", "--images", str(frame), "--out",
              str(tmp_path / "out"), *flags])
    assert seen["interleave"] is expected
    assert seen["max_resident"] == (1 if "--max-resident" in flags else None)


def test_max_resident_must_be_a_positive_count(capsys):
    from maskbench.cli.main import main

    with pytest.raises(SystemExit):
        main(["benchmark", "--max-resident", "0"])
    assert "not a whole number of jobs of at least 1" in capsys.readouterr().err


def test_the_real_worker_takes_its_turns(tmp_path):
    """``python -m maskbench.benchmark.worker`` in interleaved mode, two small jobs end to end:
    both timed in the same rounds."""
    from maskbench.data.sources import embedded_nuscenes, find_images

    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    jobs = [BenchmarkJob(model="rtmdet-ins_s_8xb32-300e_coco", runtime="torch", seed=seed, input_size=(128, 96),
                         warmup=0, repeat=2, images=(str(frame),)) for seed in (0, 1)]
    summary = run_benchmark(jobs, tmp_path / "out", progress=False, interleave=True, timeout_s=300)
    assert [r.status for r in summary.measured] == [OK, OK], [r.error for r in summary.measured]
    for record, other in zip(summary.measured, summary.measured[::-1]):
        assert record.timing == "interleaved" and len(record.round_ms) == 2 and len(record.call_ms) == 2
        assert record.compared_with == [other.key] and record.other_worker_pids is not None
    assert compare_records(*summary.measured).paired


def test_the_control_channel_keeps_the_idle_peers_and_hangs_up_cleanly():
    """The worker's side of the protocol: replies on the fd, commands on a stream; the peers a
    ``time`` names are left out of "another worker was running" (they wait, idle)."""
    import io

    from maskbench.benchmark.control import FINISH, TIME, Control, RunnerHungUp, finish_command, time_command

    read_end, write_end = os.pipe()
    commands = io.StringIO((time_command([11, 12]) + time_command([]) + finish_command()).decode())
    control = Control(write_end, commands)
    control.tell("ready")
    assert [control.next_command() for _ in range(3)] == [TIME, TIME, FINISH] and control.peers == {11, 12}
    assert os.read(read_end, 100) == b"ready\n"
    with pytest.raises(RunnerHungUp):
        control.next_command()
    control.close()
    os.close(read_end)


def test_turns_time_each_call_on_the_runners_word_and_alone_at_once():
    """The one-call-per-turn timers (the MMDetection comparison's): ``ready``, then each call only
    after a ``time`` and answered ``timed``, then ``finish`` awaited; without a channel, all at once."""
    import io

    from maskbench.benchmark.control import Control, finish_command, time_command, turns

    assert list(turns(None, 3)) == [0, 1, 2]
    read_end, write_end = os.pipe()
    commands = io.StringIO((time_command([]) * 2 + finish_command()).decode())
    control = Control(write_end, commands)
    seen = []
    for index in turns(control, 2):
        seen.append((index, commands.tell()))  # the call runs after its 'time' was read
    assert [index for index, _ in seen] == [0, 1] and seen[0][1] < seen[1][1]
    assert commands.read() == ""  # 'finish' was awaited
    control.close()
    assert os.read(read_end, 100) == b"ready\ntimed\ntimed\n"
    os.close(read_end)


def test_a_pass_of_several_calls_is_announced_and_answered_call_by_call():
    """The real worker's turns (``ready N``): within a pass each call but the first answers the
    one before it; the pass's last is answered by ``end_pass``, after the worker's own work."""
    import io

    from maskbench.benchmark.control import Control, Turns, finish_command, time_command

    read_end, write_end = os.pipe()
    commands = io.StringIO((time_command([7]) * 2 + finish_command()).decode())
    taker = Turns(Control(write_end, commands), calls_per_pass=2)
    assert list(taker.calls(2)) == [0, 1]
    taker.end_pass()
    taker.finish()
    assert taker.peers == {7} and commands.read() == ""
    assert taker.control is not None
    taker.control.close()
    assert os.read(read_end, 100) == b"ready 2\ntimed\ntimed\n"
    os.close(read_end)
