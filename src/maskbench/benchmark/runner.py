"""Run benchmark jobs one process each; record crashes and timeouts; resume an interrupted run.

Each job runs in ``python -m maskbench.benchmark.worker`` (see :mod:`.worker`). The runner
appends each job's record to ``results.jsonl`` as soon as it is known, so a run killed at any
point loses only the job in progress; run the same command again and the jobs whose newest
record is ``ok`` are skipped (``resume``), the others measured again. A job that failed because
the output folder is full or read-only stops the run (:mod:`.space`): the next would fail too.

Faults (see :mod:`.lifeline` and :mod:`maskbench.utils.out_lock`): the runner is the only writer of
``results.jsonl`` (a worker hands its record over in a file), it holds the output folder's lock
for the whole run (a second run on the same folder stops, or waits), it stops its worker's
whole process group on Ctrl-C, ``SIGTERM``, ``SIGHUP`` and any exception, and a worker whose
runner died (``SIGKILL``) is killed by the kernel and never hands in a record.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..results.records import (
    OK,
    RESULTS_FILE,
    BenchmarkJob,
    BenchmarkRecord,
    append_record,
    latest_records,
    read_records,
)
from ..utils.errors import UnknownModelError
from ..utils.out_lock import hold_output_folder
from ..zoo import get_spec
from .interleave import run_groups
from .lifeline import StoppedBySignal, signals_stop_the_run
from .oom import MemoryWatch
from .space import stop_if_disk_failed
from .worker_process import (
    NO_LOG,
    NO_OUTPUT,
    ended_record,
    job_files,
    kill_group,
    last_line,
    timeout_record,
    unwritable_log,
)

WORKER_COMMAND = (sys.executable, "-m", "maskbench.benchmark.worker")
DEFAULT_TIMEOUT_S = 3600.0
POLL_S = 1.0


@dataclass
class RunSummary:
    results_file: Path
    measured: list[BenchmarkRecord] = field(default_factory=list)  # this run's records
    resumed: list[BenchmarkRecord] = field(default_factory=list)  # ok records found from a previous run

    @property
    def records(self) -> list[BenchmarkRecord]:
        """Every job's newest record (this run's and the resumed ones)."""
        return latest_records(read_records(self.results_file))


def run_benchmark(
    jobs: Sequence[BenchmarkJob],
    out_dir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    resume: bool = True,
    worker_command: Sequence[str] = WORKER_COMMAND,
    progress: bool = True,
    on_record: Callable[[BenchmarkRecord], None] | None = None,
    wait_for_lock: bool = False,
    interleave: bool = False,
    max_resident: int | None = None,
) -> RunSummary:
    """Measure ``jobs`` in order, each in its own process, appending to ``out_dir/results.jsonl``.
    ``out_dir`` is locked for the run: another run on it raises
    :class:`~maskbench.utils.errors.OutputFolderBusy`, or is waited for with ``wait_for_lock``.
    ``interleave``: the jobs left to measure (two or more) are timed in alternating rounds, in
    groups of at most ``max_resident`` (None: as many as free memory holds), see :mod:`.interleave`;
    else each job is timed in a block of its own."""
    out_dir = Path(out_dir)
    with hold_output_folder(out_dir, wait=wait_for_lock), signals_stop_the_run():
        summary = RunSummary(out_dir / RESULTS_FILE)
        try:
            _run_jobs(jobs, out_dir, summary, timeout_s, resume, worker_command, progress, on_record,
                      interleave, max_resident)
        except StoppedBySignal as stop:
            stopped = "the jobs in progress, if any, were" if interleave else "the job in progress, if any, was"
            print(f"benchmark stopped by {stop.signal_name}: {stopped} stopped; "
                  f"{len(summary.measured)} record(s) of this run are in {summary.results_file}; "
                  "run the same command again to resume", file=sys.stderr, flush=True)
            raise
    return summary


def _run_jobs(jobs: Sequence[BenchmarkJob], out_dir: Path, summary: RunSummary, timeout_s: float, resume: bool,
              worker_command: Sequence[str], progress: bool, on_record: Callable[[BenchmarkRecord], None] | None,
              interleave: bool, max_resident: int | None) -> None:
    done = {r.key: r for r in latest_records(read_records(summary.results_file)) if r.status == OK} if resume else {}
    summary.resumed.extend(done[job.key()] for job in jobs if job.key() in done)
    pending = [job for job in jobs if job.key() not in done]
    # In a terminal the bar shows the worker's current step; in a log file only per-job lines.
    interactive = sys.stderr.isatty()
    bar = tqdm(total=len(pending), desc="benchmark", unit="job", disable=not progress)

    def keep(record: BenchmarkRecord) -> None:
        append_record(summary.results_file, record)
        summary.measured.append(record)
        bar.update(1)
        if on_record is not None:
            on_record(record)
        stop_if_disk_failed(record, out_dir)

    with bar:
        if interleave and len(pending) > 1:
            run_groups(pending, out_dir, max_resident=max_resident, timeout_s=timeout_s,
                       worker_command=worker_command, on_record=keep,
                       on_output=lambda line: bar.set_postfix_str(line[:80], refresh=interactive))
            return
        for job in pending:
            name = f"{get_alias(job.model)} {job.runtime} {job.precision}"
            bar.set_postfix_str(name)

            def on_output(line: str, name: str = name) -> None:
                bar.set_postfix_str(f"{name}: {line}", refresh=interactive)

            keep(run_in_subprocess(job, out_dir, timeout_s=timeout_s, worker_command=worker_command,
                                   on_output=on_output))


def run_in_subprocess(job: BenchmarkJob, out_dir: Path, *, timeout_s: float,
                      worker_command: Sequence[str] = WORKER_COMMAND,
                      on_output: Callable[[str], None] | None = None) -> BenchmarkRecord:
    """One job in a fresh process. The worker writes its record; if it dies first, the record
    says how (signal, exit code, timeout) with the last line it printed. ``on_output`` gets the
    worker's latest output line while it runs (the progress bar shows it). The worker gets this
    process's pid, to die with it (:func:`.lifeline.tie_to_runner`)."""
    job_file, record_file, log_file = job_files(job, out_dir)
    try:
        log = open(log_file, "w", encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        return unwritable_log(job, err, log_file)
    with log:
        process = subprocess.Popen([*worker_command, str(job_file), str(record_file), str(out_dir), str(os.getpid())],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        memory = MemoryWatch.start(process.pid)  # the OOM killer's evidence (benchmark/oom.py)
        try:
            returncode = _wait(process, timeout_s, log_file, on_output)
        except subprocess.TimeoutExpired:
            kill_group(process)
            return timeout_record(job, timeout_s, log_file)
        except BaseException:  # Ctrl-C, SIGTERM/SIGHUP, errors: stop the worker too; finished records are on disk
            kill_group(process)
            raise
        finally:
            memory.stop()
    return ended_record(job, returncode, record_file, log_file, memory)


def get_alias(model: str) -> str:
    try:
        return get_spec(model).alias
    except UnknownModelError:  # the worker reports it in the job's record
        return model


def _wait(process: subprocess.Popen, timeout_s: float, log_file: Path,
          on_output: Callable[[str], None] | None) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return process.wait(timeout=min(POLL_S, max(0.01, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            line = last_line(log_file)
            if on_output is not None and line not in (NO_OUTPUT, NO_LOG):
                on_output(line[:60])
