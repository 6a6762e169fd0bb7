"""A write that failed (disk full, quota, read-only, no permission, I/O error) as one line:
the folder, the file, how much space the run needs, what was kept, and the fix.

:class:`WriteFailed` is raised in one place, :func:`maskbench.utils.files.writing_in` (which every
atomic write and the records' append go through); a command that knows how much it still has to
write adds that with :func:`maskbench.utils.files.space_estimate`. This module is only the error and
its wording, so it imports nothing of maskbench but :mod:`.errors`.
"""

from __future__ import annotations

import errno
import math
import re
import shutil
from pathlib import Path

from .errors import MaskbenchError

# The errors of a write that the user fixes outside maskbench (space, rights, the disk).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})
# Those that surely come from a write and fail every later write in the folder too.
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
ALWAYS_WRITES = OUT_OF_SPACE | {errno.EROFS}
_WHAT = {errno.ENOSPC: "no space left in {folder}", errno.EDQUOT: "disk quota exceeded in {folder}",
         errno.EROFS: "{folder} is on a read-only file system", errno.EACCES: "no permission to write in {folder}",
         errno.EPERM: "no permission to write in {folder}", errno.EIO: "input/output error in {folder}"}
_FIX = {errno.ENOSPC: "free space there or choose another {where}",
        errno.EDQUOT: "free space within your quota or choose another {where}",
        errno.EROFS: "choose another {where} (or remount it read-write)",
        errno.EACCES: "make it writable (chmod u+w) or choose another {where}",
        errno.EPERM: "make it writable (chmod u+w) or choose another {where}",
        errno.EIO: "check the disk (dmesg) or choose another {where}"}
_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")
MB = 1024 * 1024


class WriteFailed(MaskbenchError):
    """A write under ``folder`` failed with ``code`` (an errno of :data:`WRITE_ERRNOS`).

    ``needed``: (bytes, what for) the run still needs, set by the command that knows it;
    ``kept``: what was saved anyway (e.g. "results.json holds the 2 frame(s) predicted").
    The message is built when printed, so both can be added while the error travels up.
    """

    def __init__(self, folder: Path, code: int, file: str | None = None, *, in_cache: bool = False) -> None:
        super().__init__(folder, code, file)
        self.folder, self.code, self.file, self.in_cache = Path(folder), code, file, in_cache
        self.needed: tuple[int, str] | None = None
        self.kept: str | None = None

    def __str__(self) -> str:
        where = "cache folder (MASKBENCH_CACHE)" if self.in_cache else "--out"
        writing = f"writing {self.file}, " if self.file else ""
        parts = [f"{_WHAT[self.code].format(folder=self.folder)} ({writing}[Errno {self.code}])"]
        if self.code in OUT_OF_SPACE:
            free = free_bytes(self.folder)
            space = [] if free is None else [f"{megabytes(free, round_up=False)} MB free now"]
            if self.needed is not None:
                space.insert(0, f"about {megabytes(self.needed[0])} MB free needed for {self.needed[1]}")
            parts[0] += f": {', '.join(space)}" if space else ""
        if self.kept:
            parts.append(self.kept)
        parts.append(_FIX[self.code].format(where=where))
        return "; ".join(parts)


def errno_in(reason: str | None) -> int | None:
    """The write errno quoted in a one-line reason (``[Errno 28]``, as Python and
    :class:`WriteFailed` write it), e.g. a benchmark worker's; None if there is none."""
    found = _ERRNO_IN_TEXT.search(reason or "")
    code = int(found.group(1)) if found else None
    return code if code in WRITE_ERRNOS else None


def free_bytes(folder: Path) -> int | None:
    """Free space for an unprivileged writer on ``folder``'s file system (its nearest existing
    parent: the folder itself may be what could not be made)."""
    for candidate in (Path(folder), *Path(folder).absolute().parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def megabytes(size: int, round_up: bool = True) -> str:
    """MB with one decimal below 10 MB; a need is rounded up, free space down, so neither is
    overstated in the user's favour."""
    step = 0.1 if size < 10 * MB else 1.0
    steps = (math.ceil if round_up else math.floor)(size / MB / step)
    return f"{steps * step:.1f}" if step < 1 else f"{steps:.0f}"
