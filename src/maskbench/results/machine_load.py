"""Was the machine quiet while a job was timed? What the worker looks at, and the one rule that
calls a record "measured under load" (the report marks it, ``recommend`` says so).

The worker reads the 1-minute load average right before and right after the timed calls, and
looks for other maskbench workers (``/proc``, Linux) before, between the timed passes and after
(never inside a timed call): an orphaned worker of a killed run, or a second benchmark, takes
the very cores the timing needs.

Imports nothing heavy: the report and ``recommend`` use :func:`under_load_reason`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import BenchmarkRecord

WORKER_MODULE = "maskbench.benchmark.worker"
WORKER_SCRIPT = "maskbench/benchmark/worker.py"
LOAD_MARGIN = 0.5  # runnable threads above the cores before a record counts as loaded
OTHERS_MARGIN = 0.25  # cores other processes may keep busy, on average, during a probe or a job's calls


def load_average_1min() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows; a kernel that does not say
        return None


@dataclass(frozen=True)
class CpuTimes:
    """A snapshot of the CPU time the machine's cores (those this process may run on) spent busy,
    and of this process' own (all its threads), in seconds, with the wall clock. Two snapshots
    tell how many cores *other* work kept busy in between (:meth:`others_busy_cores`): what the
    1-minute load average cannot say of a few seconds' probe."""

    wall: float
    busy: float  # the cores' user, nice, system, irq, softirq and steal time (/proc/stat)
    own: float  # this process' user + system time

    @classmethod
    def now(cls, stat: Path = Path("/proc/stat")) -> CpuTimes | None:
        """None where there is no ``/proc/stat`` to read (not Linux): not checked."""
        try:
            lines = stat.read_text(encoding="ascii").splitlines()
        except OSError:
            return None
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        ticks = 0
        for line in lines:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
                continue
            # user nice system idle iowait irq softirq steal (guest time is already in user)
            values = [int(value) for value in fields[:8]] + [0] * (8 - len(fields[:8]))
            ticks += sum(values[:3]) + sum(values[5:8])
        own = os.times()
        return cls(wall=time.monotonic(), busy=ticks / os.sysconf("SC_CLK_TCK"), own=own.user + own.system)

    def others_seconds(self, later: CpuTimes) -> float:
        """CPU seconds that other processes (and the hypervisor's steal) spent on these cores
        from this snapshot to ``later`` (never below 0: ticks are rounded)."""
        return max(0.0, (later.busy - self.busy) - (later.own - self.own))

    def others_busy_cores(self, later: CpuTimes) -> float:
        """Cores those others kept busy, on average, from this snapshot to ``later``."""
        wall = later.wall - self.wall
        return self.others_seconds(later) / wall if wall > 0 else 0.0


def is_worker_command(args: Sequence[str]) -> bool:
    """A process running the benchmark worker: ``python -m maskbench.benchmark.worker ...`` (or
    its file), not a shell or an editor whose arguments merely mention it."""
    return any(arg == WORKER_MODULE or arg.endswith(WORKER_SCRIPT) for arg in args)


def other_worker_pids() -> list[int] | None:
    """Pids of the maskbench workers running now, this process left out; None where there is
    no ``/proc`` to look in (not checked, which is not "none")."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    own = os.getpid()
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            raw = Path(entry.path, "cmdline").read_bytes()  # empty for zombies and kernel threads
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if is_worker_command(raw.decode("utf-8", errors="replace").split("\0")):
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class QuietWatch:
    """The load average around a job's timed calls, every other worker seen meanwhile, and the
    cores other processes kept busy *during* the job's own calls: :meth:`start` before the first
    timed call, :meth:`look` between passes, :meth:`during_call` around each timed call (it reads
    ``/proc/stat`` just outside the call's own clock), :meth:`stop` after. Only the job's own
    calls are counted, so the peers of an interleaved run, timed between them, are not."""

    load_before: float | None = None
    load_after: float | None = None
    seen: set[int] | None = field(default_factory=set)  # None: cannot look (no /proc)
    others_cpu_s: float | None = 0.0  # other processes' CPU seconds within the calls; None: unreadable
    calls_s: float = 0.0

    @contextmanager
    def during_call(self) -> Iterator[None]:
        before = CpuTimes.now()
        yield
        after = CpuTimes.now()
        if before is None or after is None or self.others_cpu_s is None:
            self.others_cpu_s = None
            return
        self.others_cpu_s += before.others_seconds(after)
        self.calls_s += after.wall - before.wall

    def others_busy_cores(self) -> float | None:
        """Other processes' mean busy cores during the job's calls; None where unreadable."""
        if self.others_cpu_s is None or self.calls_s <= 0:
            return None
        return self.others_cpu_s / self.calls_s

    @classmethod
    def start(cls) -> QuietWatch:
        watch = cls(load_before=load_average_1min())
        watch.look()
        return watch

    def look(self) -> None:
        pids = other_worker_pids()
        if pids is None or self.seen is None:
            self.seen = None
            return
        self.seen.update(pids)

    def stop(self) -> None:
        self.look()
        self.load_after = load_average_1min()

    def other_worker_pids(self) -> list[int] | None:
        return None if self.seen is None else sorted(self.seen)


def under_load_reason(record: BenchmarkRecord) -> str | None:
    """Why ``record`` counts as measured under load, in words; None when the machine was quiet,
    or not watched (records written before these fields: unknown is not marked).

    Under load means either:

    - the 1-minute load average before or after the timed calls was above the cores the job
      could use (``usable_cpus``, or its threads if it asked for more) plus
      :data:`LOAD_MARGIN`: more threads wanted to run than there were cores, so some of the
      timed calls waited for a CPU. Not "above the job's own threads": the load average counts
      this job's own threads too, and lags by a minute, so the reading before the timing still
      holds the export/compile that may have used every core; only a load above the cores is
      unambiguously someone else's. Other work on cores the job does not use is not counted
      (it can still share caches and memory bandwidth: an idle machine is the only sure one);
    - another maskbench worker was alive during the timing (an orphan of a killed run, a
      second benchmark): exactly the contention a benchmark must not measure, whatever the
      load average (which lags) said;
    - other processes kept more cores busy during the job's own calls than the job left free
      plus :data:`OTHERS_MARGIN` (``others_busy_cores``, from ``/proc/stat``): a neighbour of a
      few seconds, which a minute's load average does not show.
    """
    reasons = []
    cores = record.environment.get("usable_cpus")
    loads = [load for load in (record.load_average_before, record.load_average_after) if load is not None]
    if cores and loads:
        threads = record.threads or 0
        base = f"{cores} usable CPUs" if int(cores) >= threads else f"{threads} threads"
        limit = max(int(cores), threads) + LOAD_MARGIN
        if max(loads) > limit:
            reasons.append(f"1-min load average {max(loads):.1f} > {limit:g} ({base} + {LOAD_MARGIN:g})")
    others = record.others_busy_cores
    if cores and others is not None:
        free = max(0, int(cores) - int(record.threads or cores))
        if others > free + OTHERS_MARGIN:
            reasons.append(f"other processes kept {others:.2f} cores busy during its calls "
                           f"(> {free + OTHERS_MARGIN:g}: {free} free + {OTHERS_MARGIN:g})")
    if record.other_worker_pids:
        pids = ", ".join(map(str, record.other_worker_pids))
        reasons.append(f"another maskbench worker was running (pid {pids})")
    return "; ".join(reasons) or None
