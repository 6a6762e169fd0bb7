"""One worker process as the runner sees it: its files, and the record it leaves, whatever
happened to it. Shared by the block runner (:mod:`.runner`) and the interleaved one
(:mod:`.interleave`), so a crash, a timeout or a missing record reads the same in both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from ..pipeline.coco_results import write_json_atomic
from ..results.records import CRASHED, FAILED, OUT_OF_MEMORY, TIMEOUT, BenchmarkJob, BenchmarkRecord
from ..utils.files import silent_write_failure, write_failure
from .oom import MemoryWatch, out_of_memory_reason
from .worker import base_record

NO_OUTPUT, NO_LOG = "(nothing)", "(no log)"
LOG_BYTES = 64 * 1024  # room a worker's log needs: less free than this in its folder, and it could not write it


def job_files(job: BenchmarkJob, out_dir: Path) -> tuple[Path, Path, Path]:
    """``(job file, record file, log file)``: the job written for the worker, the (removed) file
    it will hand its record in, and its log's path (folder made)."""
    slug = job.slug()
    job_file = write_json_atomic(out_dir / "jobs" / f"{slug}.json", job.to_dict())
    record_file = out_dir / "jobs" / f"{slug}.record.json"
    log_file = out_dir / "logs" / f"{slug}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.unlink(missing_ok=True)
    return job_file, record_file, log_file


def ended_record(job: BenchmarkJob, returncode: int, record_file: Path, log_file: Path,
                 memory: MemoryWatch | None = None, beside: int = 0) -> BenchmarkRecord:
    """The record of a worker that ended: its own, or how it died and the last line it printed;
    ``memory``: what its :class:`~.oom.MemoryWatch` saw (a SIGKILL with the kernel's OOM evidence
    is recorded as out of memory); ``beside``: prepared jobs resident beside it (interleaved)."""
    own = None
    if returncode == 0 and record_file.exists():
        own = BenchmarkRecord.from_dict(json.loads(record_file.read_text(encoding="utf-8")))
        if own.ok:
            return own
    oom = out_of_memory_reason(returncode, memory)
    if oom is not None and memory is not None:
        fix = (f"it ran beside {beside} other prepared job(s): pass a smaller --max-resident (1: each job alone)"
               if beside else "use a smaller --input-size, fewer --threads, or a machine with more memory")
        record = failure(job, OUT_OF_MEMORY, f"{oom}; {fix}; last output: {last_line(log_file)} "
                                             f"(full log: {log_file})")
        record.peak_rss_mb, record.free_memory_mb = memory.peak_rss_mb, memory.free_mb
        return record
    how = own.error if own is not None else describe_exit(returncode)
    log = silent_write_failure(log_file.parent, LOG_BYTES, "the worker's log")
    if log is not None:  # its own output failed first: a write failure, named, not a crash
        return failure(job, FAILED, f"{log}; the worker could not write its log {log_file.name} ({how})")
    if own is not None:
        return own
    return failure(job, CRASHED, f"{how}; last output: {last_line(log_file)} (full log: {log_file})")


def unwritable_log(job: BenchmarkJob, err: OSError, log_file: Path) -> BenchmarkRecord:
    """The record of a job whose log cannot even be opened (the worker is not started): a write
    failure naming the folder (a full or read-only one then stops the run, :mod:`.space`)."""
    found = write_failure(err, log_file.parent, log_file.name)
    if found is None:
        raise err
    return failure(job, FAILED, f"{found}; the worker was not started (its log cannot be written)")


def timeout_record(job: BenchmarkJob, timeout_s: float, log_file: Path) -> BenchmarkRecord:
    return failure(job, TIMEOUT, f"no result after {timeout_s:.0f} s; the worker was stopped "
                                 f"(raise --timeout, or see {log_file})")


def failure(job: BenchmarkJob, status: str, reason: str) -> BenchmarkRecord:
    record = base_record(job)
    record.status, record.error = status, reason
    return record


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        if name == "SIGKILL":
            return "the worker was killed (SIGKILL: by hand, or out of memory without the kernel's evidence)"
        return f"the worker died of {name}"
    return f"the worker exited with code {returncode} without a result"


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return NO_LOG
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else NO_OUTPUT


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the worker's whole process group (it runs in a session of its own) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
