"""Files that survive a crash, their hashes, and maskbench's cache folders.

- Atomic writes: everything maskbench writes under a final name (results, overlays, exported
  graphs, engines) is written to a temporary file beside it, fsynced and renamed, so a crash,
  a kill or a full disk never leaves half a file that a later run would trust.
- Write errors: an ``OSError`` of a write (disk full, quota, read-only, no permission, I/O error)
  becomes :class:`~maskbench.utils.write_errors.WriteFailed`, one line naming the folder, in one place,
  :func:`writing_in`, which the atomic writes and :func:`append_line` go through; a command adds
  how much space it needs with :func:`space_estimate`.
- ``append_line``: a JSON-lines file (benchmark records) gains a whole line or nothing.
- ``file_sha256``: checkpoints and artifacts are identified by content, read in chunks.
- ``cache_dir(kind)``: one root for everything cached, ``$MASKBENCH_CACHE`` if set, else
  ``$XDG_CACHE_HOME/maskbench``, else ``~/.cache/maskbench``; each kind (``checkpoints``,
  ``onnx``, ...) is a folder below it. Empty variables count as unset, as the XDG spec asks.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .write_errors import ALWAYS_WRITES, OUT_OF_SPACE, WRITE_ERRNOS, WriteFailed, free_bytes

_CHUNK_BYTES = 1 << 20
_TAIL_BYTES = 1 << 16


def cache_root() -> Path:
    explicit = os.environ.get("MASKBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    if xdg_cache:
        return Path(xdg_cache).expanduser() / "maskbench"
    return Path.home() / ".cache" / "maskbench"


def cache_dir(kind: str) -> Path:
    """The cache folder for one kind of file, e.g. ``cache_dir("checkpoints")``."""
    return cache_root() / kind


def file_sha256(path: Path | str) -> str:
    """Hex sha256 of a file, read in chunks so that big checkpoints do not fill memory."""
    return file_digest(path, "sha256")


def file_digest(path: Path | str, algorithm: str) -> str:
    """Hex digest of a file by a :mod:`hashlib` algorithm name, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (same filesystem, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is
    removed and ``path`` is left as it was (a write error: :class:`WriteFailed`)."""
    path = Path(path)
    tmp = temporary_sibling(path)
    with writing_in(path.parent, path.name):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            _fsync_file(tmp)  # what a library wrote is on disk before it takes the final name
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing; it is fsynced and renamed onto ``path`` on success.

    ``os.open`` honours the umask, so the final file gets normal permissions (not mkstemp's 0600)."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())


def append_line(path: Path | str, line: str, last_line_ok: Callable[[bytes], bool] = lambda _: True) -> None:
    """Append ``line`` and its newline with one ``write``, then fsync: the file gains the whole
    line or nothing (a short write, on a full disk, is completed or cut off again). A torn last
    line left by a crash (no newline, or failing ``last_line_ok``) is cut off first, so the
    earlier lines stay a valid JSON-lines file."""
    path = Path(path)
    data = (line + "\n").encode("utf-8")
    with writing_in(path.parent, path.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            size = _cut_torn_tail(fd, last_line_ok)
            try:
                written = os.write(fd, data)
                if written < len(data):  # raises the disk's own error (ENOSPC, EDQUOT...) if still short
                    os.write(fd, data[written:])
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):  # else the reader skips the torn line, the next append cuts it
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def _cut_torn_tail(fd: int, last_line_ok: Callable[[bytes], bool]) -> int:
    """Cut the file's last line if it is torn; return the size after."""
    size = os.fstat(fd).st_size
    start = _last_line_start(fd, size)
    last = os.pread(fd, size - start, start)
    if not last or (last.endswith(b"\n") and last_line_ok(last[:-1])):
        return size
    os.ftruncate(fd, start)
    return start


def _last_line_start(fd: int, size: int) -> int:
    """Offset of the last line: just after the newline before the file's last byte."""
    end = size - 1
    while end > 0:
        begin = max(0, end - _TAIL_BYTES)
        found = os.pread(fd, end - begin, begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


@contextlib.contextmanager
def writing_in(folder: Path | str, file: str | None = None) -> Iterator[None]:
    """A write error inside (``file`` in ``folder``) leaves as :class:`WriteFailed`: the one
    place where maskbench turns such an ``OSError`` into its one-line error."""
    try:
        yield
    except OSError as err:
        failure = write_failure(err, Path(folder), file)
        if failure is None:
            raise
        raise failure from err


def write_failure(err: OSError, folder: Path | None, file: str | None = None) -> WriteFailed | None:
    """``err`` as a :class:`WriteFailed`, or None when it is not a write error in ``folder``.

    Disk full, quota and read-only only come from writes. No permission and I/O errors may come
    from reading an input too, so they count only about a file in ``folder`` (or with no file
    named: a write to an open file)."""
    if err.errno not in WRITE_ERRNOS:
        return None
    named = Path(os.fsdecode(err.filename)) if isinstance(err.filename, (str, bytes, os.PathLike)) else None
    if folder is None or (named is not None and not _inside(named, folder)):
        if named is None or err.errno not in ALWAYS_WRITES:
            return None
        folder, file = named.parent, named.name
    elif file is None and named is not None:
        file = os.path.relpath(named, folder)
    return WriteFailed(folder, err.errno, file, in_cache=_inside(folder, cache_root()))


@contextlib.contextmanager
def space_estimate(folder: Path | str, estimate: Callable[[], tuple[int, str]],
                   kept: str | None = None) -> Iterator[None]:
    """Around a command's writes into ``folder``: a full disk there says how much the run needs,
    ``estimate()`` -> (bytes, what for), asked only then, and what was ``kept``; a write
    ``OSError`` that no writer translated becomes :class:`WriteFailed` too."""
    try:
        with writing_in(folder):
            yield
    except WriteFailed as failure:
        if _inside(failure.folder, Path(folder)):
            if failure.code in OUT_OF_SPACE and failure.needed is None:
                with contextlib.suppress(Exception):  # noqa: BLE001 - no estimate rather than another error
                    failure.needed = estimate()
            failure.kept = failure.kept or kept
        raise


def silent_write_failure(folder: Path | str, needed: int, what: str) -> WriteFailed | None:
    """For a library whose failed write carries no errno (OpenVINO's ``save_model``: "iostream
    error"), what the folder's state says: less free space than the ``needed`` bytes, a read-only
    file system, or no right to write there; None if none of these holds."""
    folder = Path(folder)
    free = free_bytes(folder)
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return None
    if free is not None and free < needed:
        code = errno.ENOSPC
    elif read_only or not os.access(folder, os.W_OK):
        code = errno.EROFS if read_only else errno.EACCES
    else:
        return None
    failure = WriteFailed(folder, code, in_cache=_inside(folder, cache_root()))
    failure.needed = (needed, what)
    return failure


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
