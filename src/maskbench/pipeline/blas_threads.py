"""numpy's BLAS held to one thread while maskbench decodes masks, the masks spread over a few
Python threads instead.

Why: OpenBLAS (numpy's BLAS) keeps its worker threads spinning for a while after every
multi-threaded product before they sleep. The mask decoding (:mod:`.bilinear`, Mask R-CNN's
paste) is a few hundred small products; right after it comes the next frame's inference, whose
runtime (OpenVINO, ONNX Runtime) needs every core, and the spinning threads take them. Measured on
a 2-core AVX2 EPYC (docs/performance.md, "BLAS threads"): RTMDet-Ins-s int8's OpenVINO call took
204 ms after a decoding with 2 BLAS threads, 160 ms after one with 1 (end to end 217 -> 172 ms).
With one BLAS thread nobody spins; where the masks are many and large (RF-DETR-Seg's 100 masks
over a whole 1600x900 frame), :func:`map_masks` spreads them over a small pool of Python threads
(numpy releases the GIL in its products), which stop when their work is done.

threadpoolctl (a well-kept, pure-Python library) finds the loaded BLAS and sets its thread count;
where it is missing, the decoding runs as before. Since threadpoolctl 3.8, only the first Python
thread that ever changed OpenBLAS's (process-wide) pool may change it again while it lives: the
others' calls are silently ignored. The hold is taken by whichever thread starts decoding first
and released by whichever ends last (the rig decodes in several threads), so it takes that
control each time (:func:`_take_openblas_control`, under this module's lock); without it a
decoding thread's hold did nothing while the thread that first held it was alive.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_holders = 0  # threads inside one_blas_thread(): the first in limits, the last out restores
_limit: Any = None  # threadpoolctl's limiter while held
_controller: Any = None
_pool: ThreadPoolExecutor | None = None

# Masks of at least this many multiply-adds each, on average, go to the pool: RF-DETR-Seg's
# full-frame masks (~1.1e8 each) gain (decoding 169 -> 126 ms, docs/performance.md); RTMDet-Ins'
# windows (~1e6 to 1e7) lose (the rig's sync decoding 32 -> 41 ms: each mask's Python steps need
# the GIL, and a product too small to amortise the hand-over), so they stay in the caller's thread.
PARALLEL_WORK_PER_MASK = 3e7


def _blas_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _controller = ThreadpoolController()
    return _controller


def _take_openblas_control() -> None:
    """Let this thread change OpenBLAS's pool (threadpoolctl >= 3.8 ignores every thread but the
    first to have changed it; older versions have no such rule)."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread inside the block (process-wide: held while any thread is in)."""
    global _holders, _limit
    with _lock:
        if _holders == 0:
            controller = _blas_controller()
            if controller is not None:
                _take_openblas_control()
                _limit = controller.limit(limits=1, user_api="blas")
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _limit is not None:
                _take_openblas_control()
                _limit.restore_original_limits()
                _limit = None


def decode_workers() -> int:
    """Python threads for a large decoding: the CPUs this process may use, at most 4."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(4, usable))


def map_masks(work: Callable[[int], None], count: int, multiply_adds: float) -> None:
    """``work(i)`` for every mask ``i`` (each writes its own mask), with one BLAS thread: in this
    thread, or spread over :func:`decode_workers` threads when the masks' ``multiply_adds`` (in
    all) come to at least :data:`PARALLEL_WORK_PER_MASK` per mask."""
    global _pool
    with one_blas_thread():
        if count < 2 or multiply_adds < PARALLEL_WORK_PER_MASK * count or decode_workers() == 1:
            for i in range(count):
                work(i)
            return
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=decode_workers(), thread_name_prefix="maskbench-masks")
        for _ in _pool.map(work, range(count)):
            pass
