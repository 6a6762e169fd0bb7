"""Disk faults for tests: a full disk on one file's writes, a read-only folder, a real 1 MB tmpfs.

The simulations patch the calls maskbench's writers end in (``os.write``, ``os.open``,
``builtins.open``, ``os.mkdir``), so they run everywhere, as root too (root ignores chmod);
the tmpfs is used only where mounting works (root on Linux), its tests skip elsewhere.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def disk_full_on(monkeypatch, file_name: str, after: int = 0, torn_bytes: int = 7) -> list[int]:
    """Writes to files named ``file_name`` fail with ENOSPC once ``after`` writes to them
    succeeded: the failing call first writes ``torn_bytes`` (a short write, as a filling disk
    gives), the next one raises. Returns the list of the sizes written, one per call."""
    real_write = os.write
    calls: list[int] = []

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if Path(target).name != file_name:
            return real_write(fd, data)
        calls.append(len(data))
        if len(calls) <= after:
            return real_write(fd, data)
        if len(calls) == after + 1 and torn_bytes:
            return real_write(fd, bytes(data)[:torn_bytes])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)
    return calls


def read_only(monkeypatch, folder: Path, code: int = errno.EROFS) -> None:
    """Every write under ``folder`` fails with ``code`` (EROFS, EACCES), as on a read-only mount
    or a chmod 555 folder for a user other than root."""
    folder = Path(folder).absolute()
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(path)).is_relative_to(folder)

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def open_(file, mode="r", *args, **kwargs):
        if inside(file) and any(flag in mode for flag in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & WRITE_FLAGS:
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.isdir(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)


def mounted_tmpfs(base: Path, size: str = "1m"):
    """A generator for a fixture: a fresh tmpfs of ``size`` under ``base``, unmounted after;
    skips the test where mounting is not allowed."""
    point = Path(base) / f"tmpfs-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def no_temporary_files(folder: Path) -> bool:
    """No ``.name.pid.hex.tmp`` left by an atomic write anywhere under ``folder``."""
    return not [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")]


READ_ONLY_WAYS = ("chmod", "EROFS", "EACCES")


@contextlib.contextmanager
def unwritable_folder(monkeypatch, folder: Path, how: str) -> Iterator[Path]:
    """``folder``, created and made unwritable ``how``: chmod 555 (skipped as root, which ignores
    permissions: the EACCES variant simulates it), or every write failing with EROFS / EACCES."""
    folder.mkdir()
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root ignores permissions (the EACCES variant simulates it)")
        folder.chmod(0o555)
    else:
        read_only(monkeypatch, folder, getattr(errno, how))
    try:
        yield folder
    finally:
        folder.chmod(0o755)
