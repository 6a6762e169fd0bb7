"""A stand-in for ``python -m maskbench.benchmark.worker JOB RECORD OUT RUNNER_PID [REPLY_FD]``: what it does
depends on the job's runtime name; no model is built (it imports no torch). Like the real
worker, it ties itself to its runner first; it writes its pid to ``OUT/pids/RUNTIME`` and
appends the runtime to ``OUT/calls.txt``.

runtimes: ``crash`` (SIGKILLs itself), ``oom`` (under an ``RLIMIT_AS`` of its size + 256 MiB, fills
it, holds it 1.5 s for the runner's memory watch, then SIGKILLs itself as the kernel's OOM killer
would), ``flood`` (prints 2 MiB: on a full disk its log write fails and it dies), ``hang`` (60 s),
``exit3``, ``error`` (a failed record),
``sleep`` (30 s, then ok), ``sleep-once`` (30 s the first time, ok after), ``slow`` (1.5 s, then
ok); any other name: an ok record at once.

With ``REPLY_FD`` it speaks the interleaved protocol (maskbench.benchmark.control) after the
above: ``ready``, then per ``time`` command one 0.05 s "pass" logged as ``RUNTIME start|end
T`` lines in ``OUT/passes.txt`` (``T``: time.monotonic(), the same clock in every process);
runtimes ``die-in-round-2`` (prints a line and SIGKILLs itself in round 2),
``hang-in-round-2`` (sleeps 60 s in round 2) and ``calls-N`` (says ``ready N``: N turns per
round, each logged as a pass)."""

import json
import os
import signal
import sys
import time
from pathlib import Path

from maskbench.benchmark.lifeline import tie_to_runner  # light: no torch

tie_to_runner(int(sys.argv[4]) if len(sys.argv) > 4 else None)

job_path, record_path, out_dir = sys.argv[1:4]
out = Path(out_dir)
job_dict = json.loads(Path(job_path).read_text())
runtime = job_dict["runtime"]
(out / "pids").mkdir(exist_ok=True)
(out / "pids" / runtime).write_text(str(os.getpid()))
with open(out / "calls.txt", "a") as calls:
    calls.write(runtime + "\n")
if runtime == "crash":
    print("segfault-like death in the runtime", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if runtime == "oom":
    import resource

    vm_size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize:")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm_size + (256 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
    chunks = []
    try:
        while True:
            chunks.append(b"\x01" * (4 << 20))  # written: resident, not only reserved
    except MemoryError:
        pass
    print(f"holding {len(chunks) * 4} MiB at the limit", flush=True)
    time.sleep(1.5)
    os.kill(os.getpid(), signal.SIGKILL)
if runtime == "flood":
    print("x" * (2 << 20), flush=True)
if runtime == "hang":
    time.sleep(60)
if runtime == "exit3":
    print("bad things", flush=True)
    sys.exit(3)
once = out / "sleep-once.started"
if runtime == "sleep" or (runtime == "sleep-once" and not once.exists()):
    once.touch()
    print("sleeping", flush=True)
    time.sleep(30)
if runtime == "slow":
    time.sleep(1.5)

from maskbench.results.records import BenchmarkJob, BenchmarkRecord  # noqa: E402 - after the tie, as in the worker
from maskbench.results.stats import LatencyStats  # noqa: E402

job = BenchmarkJob.from_dict(job_dict)
record = BenchmarkRecord(key=job.key(), job=job.to_dict(), status="failed", runtime=runtime)
round_ms = []
if len(sys.argv) > 5 and runtime != "error":
    from maskbench.benchmark.control import READY, TIME, TIMED, Control  # noqa: E402

    control = Control(int(sys.argv[5]))
    # "calls-N": N timed calls per pass, as the real worker announces its frames (ready N)
    control.tell(f"{READY} {runtime.split('-')[1]}" if runtime.startswith("calls-") else READY)
    while control.next_command() == TIME:
        round_ = len(round_ms) + 1
        with open(out / "passes.txt", "a") as passes:
            passes.write(f"{runtime} start {time.monotonic()}\n")
        if runtime == "die-in-round-2" and round_ == 2:
            print("dying in round 2", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if runtime == "hang-in-round-2" and round_ == 2:
            time.sleep(60)
        time.sleep(0.05)
        with open(out / "passes.txt", "a") as passes:
            passes.write(f"{runtime} end {time.monotonic()}\n")
        round_ms.append(10.0 + round_)
        control.tell(TIMED)
    record.timing = "interleaved"
if runtime == "error":
    record.error = "this runtime cannot run this model"
else:
    record.status = "ok"
    record.end_to_end = LatencyStats.from_seconds([0.01, 0.02]).to_dict()
    record.round_ms = round_ms or None
with open(record_path, "w") as handle:
    json.dump(record.to_dict(), handle)
