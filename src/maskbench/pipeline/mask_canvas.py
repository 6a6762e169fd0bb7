"""Blank (N, H, W) mask arrays that post-processing writes window by window, reused across frames.

A frame's masks are 144 MB for 100 detections at 1600x900, but each detection writes only the
window around its object. On a fresh array every written page is a first-touch page fault (the
kernel allocates and zeroes it): measured on RTMDet-Ins-s (three nuScenes frames, 0.8-1.7 M mask
pixels each), 12.7 ms per frame for the masks, 3.6 ms of it with the pages already there. So the
arrays come from a small pool of anonymous mappings: once the caller has dropped a frame's
masks (the pool holds only a weak reference to the array it handed out; any view of it keeps it
alive), the next frame gets the same mapping back with the windows written last time cleared,
and its writes land on pages that are already there. The price is resident memory: a pooled
mapping keeps the pages its windows touched (at most its size) while no frame uses it. A caller
that keeps many frames' masks alive simply gets fresh mappings, as before.

Why an anonymous mapping and not ``np.zeros``: numpy asks the kernel for transparent huge pages
on large arrays, and where huge pages are compacted on demand (``defrag = madvise``, a common
default) the first write to each 2 MB page can stall (see :mod:`maskbench.pipeline.postprocess`);
untouched pages of a mapping stay the kernel's shared zero page.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

POOL_SIZE = 2  # mappings kept: the frame being written and the one a caller may still hold


@dataclass
class _Slot:
    buffer: mmap.mmap
    shape: tuple[int, ...] = ()
    windows: list[tuple[int, slice, slice]] = field(default_factory=list)
    handed_out: weakref.ref | None = None

    def free(self) -> bool:
        return self.handed_out is None or self.handed_out() is None

    def clear(self) -> None:
        """Zero what the last frame wrote, so that the whole array is False again."""
        if self.windows:
            last = np.frombuffer(self.buffer, dtype=bool, count=int(np.prod(self.shape))).reshape(self.shape)
            for i, rows, cols in self.windows:
                last[i, rows, cols] = False
        self.windows = []


_POOL: list[_Slot] = []
_LOCK = threading.Lock()


class MaskCanvas:
    """All-False (N, H, W) bool ``masks``; write each detection through :meth:`window` (which
    records what to clear when the array comes back to the pool)."""

    def __init__(self, shape: tuple[int, int, int]):
        self._windows: list[tuple[int, slice, slice]] | None = None
        size = int(np.prod(shape))
        if size == 0:
            self.masks = np.zeros(shape, dtype=bool)
            return
        slot = _take_slot(size)
        buffer = slot.buffer if slot is not None else mmap.mmap(-1, size)
        flat = np.frombuffer(buffer, dtype=bool, count=size)
        if slot is not None:
            slot.shape, slot.handed_out = shape, weakref.ref(flat)
            self._windows = slot.windows
        self.masks = flat.reshape(shape)

    def window(self, index: int, rows: slice, cols: slice) -> np.ndarray:
        """The writable view ``masks[index, rows, cols]``."""
        if self._windows is not None:
            self._windows.append((index, rows, cols))
        return self.masks[index, rows, cols]


def _take_slot(size: int) -> _Slot | None:
    """A free pooled mapping of at least ``size`` bytes, cleared; a new one while the pool has
    room (a larger one replaces a free smaller one); ``None`` when every slot is in use."""
    with _LOCK:
        free = [slot for slot in _POOL if slot.free()]
        fitting = [slot for slot in free if len(slot.buffer) >= size]
        if fitting:
            slot = min(fitting, key=lambda s: len(s.buffer))
            slot.clear()
            return slot
        if len(_POOL) >= POOL_SIZE:
            if not free:
                return None
            _POOL.remove(min(free, key=lambda s: len(s.buffer)))
        slot = _Slot(mmap.mmap(-1, size))
        _POOL.append(slot)
        return slot
