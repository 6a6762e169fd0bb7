"""A benchmark worker never outlives its runner.

A worker left running after its runner died (an OOM kill, a closed terminal, ``kill``) keeps
the cores busy while the rerun times the next jobs, and its results belong to no run. Two
sides:

- the worker (:func:`tie_to_runner`, the first thing its ``main`` does): on Linux it asks the
  kernel to ``SIGKILL`` it when its parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks
  that its parent is still the runner that started it (the runner passes its pid), which
  closes the race of a runner that died before the ``prctl``. Elsewhere a daemon thread
  watches the parent pid and ends the worker when it changes. :func:`runner_alive` is checked
  again before the worker writes its record, so an orphan never hands in a result;
- the runner (:func:`signals_stop_the_run`): ``SIGTERM`` and ``SIGHUP`` raise
  :class:`StoppedBySignal` (a ``SystemExit``), which unwinds through the runner's existing
  kill path (the worker's whole process group, as Ctrl-C does). ``SIGKILL`` cannot be caught:
  that is the death signal's case.

The death signal follows the thread that started the worker: a runner driven from a thread
that ends before the run (not the CLI, whose runner is the main thread) would kill its worker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED_EXIT_CODE = 70  # the worker found its runner gone (nobody reads it; for tests and logs)
WATCH_INTERVAL_S = 0.5
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def tie_to_runner(runner_pid: int | None) -> None:
    """Die with the runner: the death signal (Linux) or a watching thread, then end now if the
    runner is already gone. ``runner_pid`` None (a worker started by hand): its parent at start."""
    expected = runner_pid if runner_pid is not None else os.getppid()
    if not _set_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(expected,), name="runner-watch", daemon=True).start()
    if not runner_alive(expected):
        os._exit(ORPHANED_EXIT_CODE)


def runner_alive(runner_pid: int | None) -> bool:
    """True while this process's parent is still ``runner_pid`` (an orphan is adopted by init or
    a subreaper, so its parent pid changes)."""
    return runner_pid is None or os.getppid() == runner_pid


def _set_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(expected: int) -> None:
    while runner_alive(expected):
        time.sleep(WATCH_INTERVAL_S)
    os._exit(ORPHANED_EXIT_CODE)


class StoppedBySignal(SystemExit):
    """The runner was asked to stop (``SIGTERM``, ``SIGHUP``): exit status 128 + the signal, as a
    shell reports a process killed by it, without a traceback."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


@contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """While the block runs, ``SIGTERM`` and ``SIGHUP`` raise :class:`StoppedBySignal`. Only
    signals left at their default are taken (``nohup`` sets ``SIGHUP`` to ignored: it stays so),
    only in the main thread (Python runs handlers there), and the previous handlers come back."""
    taken = {}
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                taken[signum] = signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, previous in taken.items():
            signal.signal(signum, previous)


def _stop(signum: int, frame) -> None:
    raise StoppedBySignal(signum)
