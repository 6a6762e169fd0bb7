"""Files that survive a crash, their hashes, and maskbench's cache folders.

- Atomic writes: everything maskbench writes under a final name (results, overlays, exported
  graphs, engines) is written to a temporary file beside it, fsynced and renamed, so a crash,
  a kill or a full disk never leaves half a file that a later run would trust.
- ``file_sha256``: checkpoints and artifacts are identified by content, read in chunks.
- ``cache_dir(kind)``: one root for everything cached, ``$MASKBENCH_CACHE`` if set, else
  ``$XDG_CACHE_HOME/maskbench``, else ``~/.cache/maskbench``; each kind (``checkpoints``,
  ``onnx``, ...) is a folder below it. Empty variables count as unset, as the XDG spec asks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_CHUNK_BYTES = 1 << 20


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
    digest = hashlib.sha256()
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
    removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
