"""The interleaved runner's control channel to a worker (:mod:`.interleave`).

A worker started with a reply fd (the fifth argument) prepares as usual, then says ``ready``
and waits: nothing is timed until the runner says ``time PEER_PIDS`` (one timed pass over the
frames, answered ``timed``); ``finish`` lets it do the rest (stages, fidelity, AP, the record)
and exit. Commands come on the worker's stdin, replies go to the reply fd: stdout and stderr
stay the worker's log. ``PEER_PIDS`` (comma-separated, may be empty) are the other resident
workers, idle by this protocol while this one times: they are not "another worker running".

End of stdin means the runner is gone or gave up on this worker: it exits without a record.
Imports nothing heavy (the tests' stand-in worker speaks it too).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

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


def time_command(peer_pids: list[int]) -> bytes:
    return f"{TIME} {','.join(map(str, peer_pids))}\n".encode()


def finish_command() -> bytes:
    return f"{FINISH}\n".encode()
