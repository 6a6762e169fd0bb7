"""Interleaved timing: the jobs of a group take turns, one timed call each, round after round.

Timing each job in its own block lets the machine's drift (frequency, a neighbour, heat) fall on
some jobs and not others, and a ratio between two blocks can move by as much as the difference
it claims. Here every job of a group is started in its own process as in block mode and prepared
one after another (model built, graph exported or compiled, warm-up done; a compile never runs
beside another), then the runner commands the timed calls in rounds, call by call, A1 B1 C1 A2
B2 C2 ... (a round: each job's pass over its frames): exactly one job times at any moment, the
others wait idle (:mod:`.control`), so drift falls on every job alike, and A's and B's passes of
a round span the same minutes, which the paired intervals of :mod:`maskbench.results.intervals` use. Then each job
finishes (stages, fidelity, AP, its record) one at a time.

Faults as in block mode (:mod:`.worker_process`): a worker that dies or runs past its timeout
(its own working time: waiting for its turn does not count) gets its crashed or timeout record
at once, and the others carry on; any exception, Ctrl-C or stop signal kills every resident
worker's process group (finished records are on disk).

Memory: a group keeps its jobs resident at once, so a run is split into groups of at most
``max_resident`` jobs (:func:`default_max_resident`); only jobs of the same group are compared
directly (records: ``interleave_group``, ``compared_with``).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..results.records import TIMING_INTERLEAVED, BenchmarkJob, BenchmarkRecord
from ..utils.errors import UnknownModelError
from ..zoo import get_spec
from .control import READY, TIMED, ControlledProcess, ProcessGone, ProcessTimedOut, finish_command, time_command
from .oom import MemoryWatch
from .worker_process import ended_record, job_files, kill_group, timeout_record, unwritable_log

# A job's steady resident memory, guessed before it runs (default_max_resident): the process with
# torch and a runtime loaded, plus per parameter the fp32 weights, the runtime's compiled copy and
# its working memory. Checked against the study's five models at 1344x800 on OpenVINO fp32
# (docs/benchmark-cpu/results.jsonl: steady 1,849-2,101 MiB, peak 2,170-2,502 MiB, peak/steady
# 1.17-1.31): the guess was 700 MiB + 16 B/param (1,429-1,744 MiB, below every steady RSS: a
# group could be killed out of memory); now 1,100 MiB + 16 B/param (1,829-2,137 MiB), and one job
# of the group preparing at PREPARE_PEAK times it while the others sit prepared.
BASE_RESIDENT_MB = 1100.0
BYTES_PER_PARAM = 16.0
PREPARE_PEAK = 1.35  # the export/compile peak over the steady RSS (measured 1.17-1.31)
UNKNOWN_PARAMS = 60_000_000  # a model the zoo does not know: as large as the study's largest


def default_max_resident(jobs: Sequence[BenchmarkJob], meminfo: Path = Path("/proc/meminfo")) -> int:
    """How many prepared jobs fit in memory at once: N jobs of the largest job's guess
    (:data:`BASE_RESIDENT_MB` plus :data:`BYTES_PER_PARAM` per parameter of the zoo's model),
    one of them preparing at :data:`PREPARE_PEAK` times it, within ``MemAvailable``; at least 1
    and at most the number of jobs. A guess errs towards fewer: a group that swaps times the
    disk, not the model, and one past the memory is killed (recorded as out of memory,
    :mod:`.oom`). Without ``/proc/meminfo``: every job at once."""
    if not jobs:
        return 1
    available_mb = _mem_available_mb(meminfo)
    if available_mb is None:
        return len(jobs)
    largest = max(resident_estimate_mb(job) for job in jobs)
    return max(1, min(len(jobs), int(available_mb / largest - (PREPARE_PEAK - 1.0))))


def resident_estimate_mb(job: BenchmarkJob) -> float:
    try:
        params = get_spec(job.model).num_params or UNKNOWN_PARAMS
    except UnknownModelError:
        params = UNKNOWN_PARAMS
    return BASE_RESIDENT_MB + BYTES_PER_PARAM * params / (1024.0 * 1024.0)


def _mem_available_mb(meminfo: Path) -> float | None:
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def split_groups(jobs: Sequence[BenchmarkJob], max_resident: int) -> list[list[BenchmarkJob]]:
    """Consecutive groups of near-equal size, none above ``max_resident`` (7 jobs by 3: 3, 2, 2)."""
    count = math.ceil(len(jobs) / max(1, max_resident)) if jobs else 0
    groups, start = [], 0
    for index in range(count):
        size = len(jobs) // count + (1 if index < len(jobs) % count else 0)
        groups.append(list(jobs[start:start + size]))
        start += size
    return groups


@dataclass
class _Resident:
    """A started worker: its job, its files and its control channel."""

    job: BenchmarkJob
    channel: ControlledProcess
    record_file: Path
    log_file: Path
    memory: MemoryWatch
    turns: int = 1  # timed calls per round (the worker's 'ready N')

    @property
    def process(self) -> subprocess.Popen:
        return self.channel.process


@dataclass
class GroupRun:
    """One group's run: the records come out through ``on_record`` as soon as each is known."""

    jobs: list[BenchmarkJob]
    out_dir: Path
    group_id: str
    timeout_s: float
    worker_command: Sequence[str]
    on_record: Callable[[BenchmarkRecord], None]
    on_output: Callable[[str], None] | None = None
    resident: list[_Resident] = field(default_factory=list)

    def run(self) -> None:
        try:
            for job in self.jobs:  # one after another: a compile never runs beside another
                worker = self._start(job)
                if worker is not None:
                    self._step(worker, None, READY)
            rounds = max((max(1, w.job.repeat) for w in self.resident), default=0)
            for round_ in range(rounds):  # a round: each job's pass over its frames, call by call (A1 B1 A2 B2 ...)
                turns = max((w.turns for w in self.resident), default=0)
                for turn in range(turns):
                    for worker in list(self.resident):
                        if round_ < max(1, worker.job.repeat) and turn < worker.turns:
                            peers = [w.process.pid for w in self.resident if w is not worker]
                            self._step(worker, time_command(peers), TIMED, f"round {round_ + 1}/{rounds}")
            for worker in list(self.resident):
                self._step(worker, finish_command(), None, "finishing")
        finally:  # Ctrl-C, SIGTERM/SIGHUP, errors: stop every resident worker; finished records are on disk
            for worker in self.resident:
                kill_group(worker.process)
                worker.channel.close()
                worker.memory.stop()
            self.resident.clear()

    def _start(self, job: BenchmarkJob) -> _Resident | None:
        """The job's worker started, or None with its record out (its log cannot be written)."""
        job_file, record_file, log_file = job_files(job, self.out_dir)
        try:
            channel = ControlledProcess.start(
                lambda reply_fd: [*self.worker_command, str(job_file), str(record_file), str(self.out_dir),
                                  str(os.getpid()), str(reply_fd)], log_file, self.timeout_s)
        except OSError as err:
            record = unwritable_log(job, err, log_file)
            record.interleave_group = self.group_id
            self.on_record(record)
            return None
        worker = _Resident(job, channel, record_file, log_file, MemoryWatch.start(channel.process.pid))
        self.resident.append(worker)
        return worker

    def _step(self, worker: _Resident, command: bytes | None, reply: str | None, doing: str = "preparing") -> None:
        """Send ``command`` and wait for ``reply`` (None: for the worker to end, its record
        handed in). A worker that ends, dies or times out meanwhile leaves the group with its
        record."""
        if self.on_output is not None:
            self.on_output(f"{_name(worker.job)}: {doing}")
        try:
            if command is not None:
                worker.channel.send(command)
            if reply is not None:
                said = worker.channel.await_reply(reply)
                if reply == READY:
                    worker.turns = int(said) if said.strip().isdigit() and int(said) > 0 else 1
                return
        except ProcessGone:
            pass  # it ended early: its record, or its exit and last line, say how
        except ProcessTimedOut:
            self._time_out(worker)
            return
        try:
            worker.channel.await_exit()
        except ProcessTimedOut:
            self._time_out(worker)
            return
        worker.memory.stop()
        self._leave(worker, ended_record(worker.job, worker.process.returncode, worker.record_file, worker.log_file,
                                         worker.memory, beside=len(self.resident) - 1))

    def _time_out(self, worker: _Resident) -> None:
        kill_group(worker.process)
        self._leave(worker, timeout_record(worker.job, self.timeout_s, worker.log_file))

    def _leave(self, worker: _Resident, record: BenchmarkRecord) -> None:
        """The worker has ended: its record (its own, or how it died) goes out; it leaves the group."""
        self.resident.remove(worker)
        worker.channel.close()
        worker.memory.stop()
        record.timing = record.timing or TIMING_INTERLEAVED
        record.interleave_group = self.group_id
        record.compared_with = [job.key() for job in self.jobs if job is not worker.job]
        self.on_record(record)


def run_groups(jobs: Sequence[BenchmarkJob], out_dir: Path, *, max_resident: int | None, timeout_s: float,
               worker_command: Sequence[str], on_record: Callable[[BenchmarkRecord], None],
               on_output: Callable[[str], None] | None = None) -> None:
    """Every job, interleaved within groups of at most ``max_resident`` (None:
    :func:`default_max_resident`), group after group."""
    limit = max_resident if max_resident is not None else default_max_resident(jobs)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    for index, group in enumerate(split_groups(jobs, limit), 1):
        GroupRun(group, out_dir, f"{stamp}-{os.getpid()}/{index}", timeout_s, worker_command, on_record,
                 on_output).run()



def _name(job: BenchmarkJob) -> str:
    try:
        return f"{get_spec(job.model).alias} {job.runtime} {job.precision}"
    except UnknownModelError:
        return f"{job.model} {job.runtime} {job.precision}"
