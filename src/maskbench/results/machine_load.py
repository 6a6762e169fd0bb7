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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import BenchmarkRecord

WORKER_MODULE = "maskbench.benchmark.worker"
WORKER_SCRIPT = "maskbench/benchmark/worker.py"
LOAD_MARGIN = 0.5  # runnable threads above the cores before a record counts as loaded


def load_average_1min() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows; a kernel that does not say
        return None


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
    """The load average around a job's timed calls and every other worker seen meanwhile:
    :meth:`start` before the first timed call, :meth:`look` between passes, :meth:`stop` after."""

    load_before: float | None = None
    load_after: float | None = None
    seen: set[int] | None = field(default_factory=set)  # None: cannot look (no /proc)

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
      load average (which lags) said.
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
    if record.other_worker_pids:
        pids = ", ".join(map(str, record.other_worker_pids))
        reasons.append(f"another maskbench worker was running (pid {pids})")
    return "; ".join(reasons) or None
