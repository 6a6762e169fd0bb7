"""One writer per output folder: ``benchmark``, ``predict`` and ``evaluate`` hold an exclusive lock
on their ``--out`` folder while they run.

Two runs appending to one ``results.jsonl`` measure the same jobs at the same moment (each
slowing the other) and write each job twice; the second run must stop before it does anything,
or wait (``--wait``). The lock is ``fcntl.flock`` on :data:`LOCK_FILE` inside the folder:

- the kernel drops it when the holder dies, however it dies (``SIGKILL`` included), so a lock
  left by a killed run is simply taken over; the file keeps the holder's pid, command and start
  time only to name it in the messages (and the takeover says so in a line);
- the descriptor is close-on-exec, so a worker subprocess never inherits it: a child that
  outlived its run cannot keep the folder locked;
- the file is never deleted (deleting a locked file lets a third run lock a new file of the same
  name while the second still holds the old one); a clean release empties it;
- one process may take the same folder again (the CLI holds it, then ``run_benchmark`` does):
  nested holds count, only the outermost locks and unlocks.

Where ``fcntl`` does not exist (Windows) there is no lock. On NFS, ``flock`` works between
clients of NFSv4; the pid check is skipped for a holder on another host.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import OutputFolderBusy

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".maskbench.lock"
_held: dict[Path, int] = {}  # folder -> nesting depth, in this process
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a folder's lock, as its lock file says."""

    pid: int
    command: str
    started_at: str
    host: str

    @classmethod
    def me(cls, command: str | None) -> Holder:
        command = command or shlex.join([Path(sys.executable).name, *sys.argv])
        return cls(os.getpid(), command, _now(), socket.gethostname())

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """None for an empty file (released cleanly) or one being written right now."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["command"]), str(data["started_at"]), str(data["host"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.command}), started {self.started_at}"

    def is_running(self) -> bool | None:
        """Whether the pid is alive (a zombie counts); None on another host (cannot tell)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        return True


@contextmanager
def hold_output_folder(folder: Path, *, wait: bool = False, command: str | None = None,
                       say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``folder`` (created if needed) for this process while the block runs.

    Busy: raise :class:`~maskbench.utils.errors.OutputFolderBusy` (one line naming the holder and the
    fix), or with ``wait`` print one line and block until the holder is done. ``command``: this
    run as the messages of a later run should name it (default: the interpreter and
    ``sys.argv``); ``say``: where the waiting and takeover lines go (default: print)."""
    say = say or (lambda line: print(line, flush=True))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    with _held_guard:
        nested = _held.get(key, 0) > 0
        if nested:
            _held[key] += 1
    if nested or fcntl is None:
        try:
            yield
        finally:
            _release_nested(key, nested)
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _lock(fd, folder, wait, say)
        _say_if_taken_over(_read(fd), folder, say)
        _write(fd, Holder.me(command))
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            os.ftruncate(fd, 0)  # released cleanly: nothing to take over
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder_of(folder: Path) -> Holder | None:
    """The process the lock file of ``folder`` names (None: none, or released cleanly)."""
    try:
        return Holder.parse((Path(folder) / LOCK_FILE).read_text(encoding="utf-8"))
    except OSError:
        return None


def _lock(fd: int, folder: Path, wait: bool, say: Callable[[str], None]) -> None:
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = holder_of(folder)
    who = holder.describe() if holder else "another process (pid not written yet)"
    if not wait:
        raise OutputFolderBusy(f"{folder} is in use by another maskbench run: {who}; wait for it to finish, "
                               "use another --out, or pass --wait")
    say(f"waiting for {folder}: in use by {who} (Ctrl-C to stop)")
    fcntl.flock(fd, fcntl.LOCK_EX)


def _say_if_taken_over(previous: Holder | None, folder: Path, say: Callable[[str], None]) -> None:
    """A clean release empties the file: a holder still named in it ended without releasing."""
    if previous is None or previous.pid == os.getpid():
        return
    running = previous.is_running()
    how = "which was killed" if running is False else "which no longer holds it"
    say(f"{folder}: taking over the lock left by {previous.describe()}, {how}")


def _read(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return Holder.parse(os.read(fd, 65536).decode("utf-8", errors="replace"))


def _write(fd: int, holder: Holder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode("utf-8"), 0)


def _release_nested(key: Path, nested: bool) -> None:
    if not nested:
        return
    with _held_guard:
        _held[key] -= 1


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")
