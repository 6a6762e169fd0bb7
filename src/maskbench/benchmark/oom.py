"""Out of memory, named: was a worker that died of ``SIGKILL`` killed by the kernel's OOM killer?

The OOM killer leaves no message to the process it kills; the runner keeps the evidence while
the worker lives (:class:`MemoryWatch`: a thread that looks every :data:`SAMPLE_S` seconds):

- the ``oom_kill`` counter of the worker's memory cgroup (v2 ``memory.events``, v1
  ``memory.oom_control``) or, where no cgroup file is readable, of the machine
  (``/proc/vmstat``), before and after: it increased while the worker ran;
- its peak RSS (``VmHWM``, the kernel's high-water mark, so a look between two spikes misses
  nothing before it) against the limit it ran under: its ``RLIMIT_AS``, its cgroup's memory
  limit, else the machine's memory; within :data:`NEAR_LIMIT` of it counts as evidence;
- the memory that was free (``MemAvailable``, and the cgroup's limit minus its usage) at the
  last look.

:func:`out_of_memory_reason` turns that into the record's reason, or ``None`` (a ``SIGKILL``
without evidence stays "crashed": killed by hand). Linux only; elsewhere nothing is read and
nothing is claimed."""

from __future__ import annotations

import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_S = 0.5
NEAR_LIMIT = 0.9  # peak RSS at or above this share of the limit it ran under: the limit killed it
PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MIB = 1024.0 * 1024.0
UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge number


@dataclass(frozen=True)
class CgroupFiles:
    """The memory files of one cgroup (v2 or v1): the OOM kill counter, the limit, the usage."""

    events: Path
    limit: Path
    usage: Path

    def oom_kills(self) -> int | None:
        return _counter(self.events, "oom_kill")

    def limit_mb(self) -> float | None:
        value = _number(self.limit)
        return value / MIB if value is not None and value < UNLIMITED else None

    def usage_mb(self) -> float | None:
        value = _number(self.usage)
        return value / MIB if value is not None else None


def cgroup_files(pid: int, proc: Path = PROC, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
    """The memory cgroup of ``pid`` whose files can be read, else ``None``."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            names, bases = ("memory.events", "memory.max", "memory.current"), (root, )
        elif "memory" in controllers.split(","):  # v1
            names, bases = ("memory.oom_control", "memory.limit_in_bytes", "memory.usage_in_bytes"), (root / "memory",)
        else:
            continue
        for base in bases:
            for folder in (base / path.lstrip("/"), base):  # inside a cgroup namespace, its own cgroup is the root
                files = CgroupFiles(*(folder / name for name in names))
                if files.oom_kills() is not None:
                    return files
    return None


@dataclass
class MemoryWatch:
    """The evidence about one worker, gathered while it runs (:meth:`start` / :meth:`stop`)."""

    pid: int
    cgroup: CgroupFiles | None = None
    oom_kills_before: int | None = None
    peak_rss_mb: float | None = None
    free_mb: float | None = None
    limit_mb: float | None = None
    limit_source: str | None = None
    proc: Path = PROC
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls, pid: int, proc: Path = PROC, root: Path = CGROUP_ROOT) -> MemoryWatch:
        watch = cls(pid, cgroup_files(pid, proc, root), proc=proc)
        watch.oom_kills_before = watch.oom_kills()
        watch.look()
        watch._thread = threading.Thread(target=watch._run, name=f"memory-watch-{pid}", daemon=True)
        watch._thread.start()
        return watch

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def oom_kills(self) -> int | None:
        """The cgroup's OOM kill counter, else the machine's."""
        found = self.cgroup.oom_kills() if self.cgroup is not None else None
        return found if found is not None else _counter(self.proc / "vmstat", "oom_kill")

    def look(self) -> None:
        """Read the worker's peak RSS and limit and the free memory (nothing once it is gone)."""
        status = self.proc / str(self.pid) / "status"
        peak = _kib_field(status, "VmHWM")
        if peak is None:
            return
        self.peak_rss_mb = max(peak / 1024.0, self.peak_rss_mb or 0.0)
        limits = [(mb, source) for mb, source in ((_rlimit_as_mb(self.proc / str(self.pid) / "limits"), "RLIMIT_AS"),
                                                  (self.cgroup.limit_mb() if self.cgroup else None, "cgroup limit"),
                                                  (_meminfo_mb(self.proc, "MemTotal"), "the machine's memory"))
                  if mb is not None]
        if limits:
            self.limit_mb, self.limit_source = min(limits)
        free = [_meminfo_mb(self.proc, "MemAvailable")]
        if self.cgroup is not None and self.cgroup.limit_mb() is not None:
            usage = self.cgroup.usage_mb()
            free.append(self.cgroup.limit_mb() - usage if usage is not None else None)  # type: ignore[operator]
        known = [mb for mb in free if mb is not None]
        self.free_mb = min(known) if known else self.free_mb

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.look()


def out_of_memory_reason(returncode: int, watch: MemoryWatch | None) -> str | None:
    """Why a worker that died of ``SIGKILL`` ran out of memory, from ``watch``'s evidence; None
    without evidence (or another death)."""
    if watch is None or returncode != -signal.SIGKILL:
        return None
    after = watch.oom_kills()
    where = "its cgroup's" if watch.cgroup is not None else "the machine's (/proc/vmstat)"
    peak = f"{watch.peak_rss_mb:,.0f} MiB" if watch.peak_rss_mb is not None else "unknown"
    limit = f"{watch.limit_mb:,.0f} MiB ({watch.limit_source})" if watch.limit_mb else "no known limit"
    free = f"{watch.free_mb:,.0f} MiB free" if watch.free_mb is not None else "free memory unknown"
    if watch.oom_kills_before is not None and after is not None and after > watch.oom_kills_before:
        evidence = f"by the kernel's OOM killer ({where} oom_kill counter {watch.oom_kills_before} -> {after})"
    elif watch.peak_rss_mb is not None and watch.limit_mb and watch.peak_rss_mb >= NEAR_LIMIT * watch.limit_mb:
        evidence = "at its memory limit"
    else:
        return None
    return f"the worker was killed (SIGKILL) {evidence}: peak RSS {peak} of {limit}, {free}"


def _counter(path: Path, name: str) -> int | None:
    try:
        match = re.search(rf"^{name}\s+(\d+)\s*$", path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return UNLIMITED if text == "max" else int(text) if text.isdigit() else None


def _kib_field(path: Path, name: str) -> int | None:
    try:
        match = re.search(rf"^{name}:\s+(\d+) kB", path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _meminfo_mb(proc: Path, name: str) -> float | None:
    kib = _kib_field(proc / "meminfo", name)
    return kib / 1024.0 if kib is not None else None


def _rlimit_as_mb(path: Path) -> float | None:
    """The soft ``RLIMIT_AS`` in ``/proc/PID/limits`` (None: unlimited or unreadable)."""
    try:
        match = re.search(r"^Max address space\s+(\S+)", path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) / MIB if match and match.group(1).isdigit() else None
