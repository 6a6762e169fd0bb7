"""The interleaved runner's control channel to a worker (:mod:`.interleave`).

A worker started with a reply fd (the fifth argument) prepares as usual, then says ``ready N``
and waits: nothing is timed until the runner says ``time PEER_PIDS``, and each ``time`` is one
timed call, answered ``timed`` (N: the calls of one pass over its frames, so that A's and B's
passes of a round overlap in time, call by call; a plain ``ready`` means one turn per pass);
``finish`` lets it do the rest (stages, fidelity, AP, the record) and exit. Commands come on the
worker's stdin, replies go to the reply fd: stdout and stderr stay the worker's log.
``PEER_PIDS`` (comma-separated, may be empty) are the other resident workers, idle by this
protocol while this one times: they are not "another worker running".

End of stdin means the runner is gone or gave up on this worker: it exits without a record.
Imports nothing heavy (the tests' stand-in worker and the MMDetection oracle's timer speak it
too).

:class:`ControlledProcess` is the runner's side: a process started with the channel, commanded,
and waited for within its working time (the time it spends waiting for its turn does not count).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

READY, TIME, TIMED, FINISH = "ready", "time", "timed", "finish"


class RunnerHungUp(SystemExit):
    """stdin closed: no more commands will come (exit status 75, no record)."""

    def __init__(self) -> None:
        super().__init__(75)


class Control:
    """The worker's side: :meth:`tell` a reply, :meth:`next_command` blocks for the next one."""

    def __init__(self, reply_fd: int, commands: TextIO | None = None):
        self._replies = os.fdopen(reply_fd, "w", buffering=1, encoding="utf-8")
        self._commands = commands if commands is not None else sys.stdin
        self.peers: set[int] = set()  # every peer pid the runner named

    def tell(self, reply: str) -> None:
        self._replies.write(reply + "\n")
        self._replies.flush()

    def close(self) -> None:
        self._replies.close()

    def next_command(self) -> str:
        """The next command's word (``time`` or ``finish``); the peers of a ``time`` are kept."""
        line = self._commands.readline()
        if not line:
            raise RunnerHungUp()
        word, _, rest = line.strip().partition(" ")
        if word not in (TIME, FINISH):
            raise ValueError(f"unknown command from the runner: {line.strip()!r}")
        self.peers.update(int(pid) for pid in rest.split(",") if pid.strip())
        return word

    def await_command(self, expected: str) -> None:
        word = self.next_command()
        if word != expected:
            raise ValueError(f"the runner said {word!r} where {expected!r} was expected")


def control_from(reply_fd: int | None) -> Control | None:
    """The worker's control channel when the runner passed a reply fd, else None (run alone)."""
    return Control(reply_fd) if reply_fd is not None else None


class Turns:
    """The worker's side of the turns, written once for every timer that speaks the protocol:
    ``ready`` (``ready N`` with ``calls_per_pass`` N), then per pass :meth:`calls` (each call
    only after the runner's ``time``, the one before it answered ``timed``), :meth:`end_pass`
    (the pass's last call answered: anything done before it, such as looking at the machine's
    load, lies outside every job's timed call), and :meth:`finish` (the runner's ``finish``
    awaited). Without a control channel (run alone) every step is a no-op."""

    def __init__(self, control: Control | None, calls_per_pass: int | None = None):
        self.control = control
        if control is not None:
            control.tell(READY if calls_per_pass is None else f"{READY} {calls_per_pass}")

    def calls(self, count: int) -> Iterator[int]:
        """One pass of ``count`` calls, each on the runner's word (idle until this job's turn)."""
        for index in range(count):
            if self.control is not None:
                if index:
                    self.control.tell(TIMED)
                self.control.await_command(TIME)
            yield index

    def end_pass(self) -> None:
        if self.control is not None:
            self.control.tell(TIMED)

    def finish(self) -> None:
        if self.control is not None:
            self.control.await_command(FINISH)

    @property
    def peers(self) -> set[int]:
        """The other resident workers the runner named: idle by the protocol, not load."""
        return self.control.peers if self.control is not None else set()


def turns(control: Control | None, calls: int) -> Iterator[int]:
    """``calls`` timed calls, one per turn (a plain ``ready``: a pass is one call; for a timer
    that makes one call per turn: the MMDetection comparison's)."""
    taker = Turns(control)
    for index in range(max(1, calls)):
        for _ in taker.calls(1):
            yield index
        taker.end_pass()
    taker.finish()


def time_command(peer_pids: list[int]) -> bytes:
    return f"{TIME} {','.join(map(str, peer_pids))}\n".encode()


def finish_command() -> bytes:
    return f"{FINISH}\n".encode()


class ProcessGone(Exception):
    """The process ended (or closed its reply pipe, or broke the protocol) before the expected reply."""


class ProcessTimedOut(Exception):
    """The process used up its working time."""


POLL_S = 1.0


@dataclass
class ControlledProcess:
    """The runner's side of one controlled process: ``argv(reply_fd)`` is its command line
    (the reply fd must be passed on it), its output goes to ``log_file``, and ``timeout_s``
    bounds its working time: the seconds the runner spends waiting for it."""

    process: subprocess.Popen
    log: IO[str]
    replies: int  # read end of the reply pipe
    timeout_s: float
    used_s: float = 0.0
    buffer: bytes = field(default=b"")

    @classmethod
    def start(cls, argv: Callable[[int], Sequence[str]], log_file: Path, timeout_s: float,
              env: dict[str, str] | None = None) -> ControlledProcess:
        log = open(log_file, "w", encoding="utf-8")  # noqa: SIM115 - open while the process lives
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(list(argv(write_end)), stdin=subprocess.PIPE, stdout=log,
                                       stderr=subprocess.STDOUT, pass_fds=(write_end,), start_new_session=True,
                                       env=env)
        except BaseException:
            os.close(read_end)
            log.close()
            raise
        finally:
            os.close(write_end)  # the process's copy is the only one: its exit is the pipe's end
        return cls(process, log, read_end, timeout_s)

    def send(self, command: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None  # started with stdin=PIPE
        try:
            stdin.write(command)
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise ProcessGone() from None

    def await_reply(self, expected: str) -> str:
        """Wait for a reply line whose first word is ``expected``; the rest of the line."""
        while b"\n" not in self.buffer:
            remaining = self.timeout_s - self.used_s
            if remaining <= 0:
                raise ProcessTimedOut()
            started = time.monotonic()
            readable, _, _ = select.select([self.replies], [], [], min(POLL_S, remaining))
            self.used_s += time.monotonic() - started
            if readable:
                chunk = os.read(self.replies, 4096)
                if not chunk:
                    raise ProcessGone()
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        word, _, rest = line.decode("utf-8", errors="replace").strip().partition(" ")
        if word != expected:
            raise ProcessGone()  # not the protocol: treat it as an ended process (its log says why)
        return rest

    def await_exit(self) -> int:
        remaining = max(0.01, self.timeout_s - self.used_s)
        started = time.monotonic()
        try:
            return self.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise ProcessTimedOut() from None
        finally:
            self.used_s += time.monotonic() - started

    def close(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:  # the process is gone: nothing left to flush
                pass
        os.close(self.replies)
        self.log.close()
