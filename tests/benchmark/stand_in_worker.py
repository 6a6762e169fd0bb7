"""A stand-in for ``python -m maskbench.benchmark.worker JOB RECORD OUT RUNNER_PID``: what it does
depends on the job's runtime name; no model is built (it imports no torch). Like the real
worker, it ties itself to its runner first; it writes its pid to ``OUT/pids/RUNTIME`` and
appends the runtime to ``OUT/calls.txt``.

runtimes: ``crash`` (SIGKILLs itself), ``hang`` (60 s), ``exit3``, ``error`` (a failed record),
``sleep`` (30 s, then ok), ``sleep-once`` (30 s the first time, ok after), ``slow`` (1.5 s, then
ok); any other name: an ok record at once."""

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

from maskbench.records import BenchmarkJob, BenchmarkRecord  # noqa: E402 - after the tie, as in the worker
from maskbench.stats import LatencyStats  # noqa: E402

job = BenchmarkJob.from_dict(job_dict)
record = BenchmarkRecord(key=job.key(), job=job.to_dict(), status="failed", runtime=runtime)
if runtime == "error":
    record.error = "this runtime cannot run this model"
else:
    record.status = "ok"
    record.end_to_end = LatencyStats.from_seconds([0.01, 0.02]).to_dict()
with open(record_path, "w") as handle:
    json.dump(record.to_dict(), handle)
