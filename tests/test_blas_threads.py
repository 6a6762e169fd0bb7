"""numpy's BLAS held to one thread while masks decode (pipeline/blas_threads.py): the limit and
its release (also when two threads hold it), the thread pool's masks equal the serial ones, and
the point of it all: after a decoding no BLAS thread spins (process CPU time while idle), where a
plain multi-threaded product in the same kind of fresh process leaves one spinning for ~0.1 s."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from maskbench.pipeline import blas_threads
from maskbench.pipeline.bilinear import direct_axis, threshold_resized

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads_now() -> list[int]:
    """The thread counts of numpy's own BLAS (the one the decoding's products use; numpy's wheels
    carry it in ``numpy.libs``). Other BLAS libraries that a test process loads later (SciPy's,
    through NNCF) are not what the decoding calls."""
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas" and "numpy" in info["filepath"]]


HOLDERS = """
import threading
import numpy  # noqa: F401 - its BLAS is what the decoding's products use
import threadpoolctl
from maskbench.pipeline.blas_threads import one_blas_thread

def numpy_blas():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and "numpy" in i["filepath"]]

before = numpy_blas()
if not before:
    print("skip")
    raise SystemExit(0)
with one_blas_thread():  # this (main) thread changes OpenBLAS first, as a decoding in it would
    pass
entered, release = threading.Event(), threading.Event()

def other_holder():
    with one_blas_thread():
        entered.set()
        release.wait(10)

other = threading.Thread(target=other_holder)
other.start()
entered.wait(10)
with one_blas_thread():
    inside = numpy_blas()
still_held = numpy_blas()  # the other thread still holds it
release.set()
other.join()
after = numpy_blas() == before

# another thread's hold while the one that changed OpenBLAS first lives must still limit it
# (threadpoolctl >= 3.8 ignores OpenBLAS changes from any thread but the one that made the first)
seen = []

def later_holder():
    with one_blas_thread():
        seen.append(numpy_blas())

later = threading.Thread(target=later_holder)
later.start()
later.join()
print(inside, still_held, after, seen[0], numpy_blas() == before)
"""


def test_one_thread_inside_and_the_original_after_the_last_holder_leaves():
    """In a fresh interpreter (which thread first changed OpenBLAS matters, so no other test may
    have): after a hold in the main thread, two holders in two threads (the other thread first:
    in the full suite this saw 2 threads inside, the hold of a thread other than the first to
    change OpenBLAS being ignored by threadpoolctl 3.8), then a hold in a third thread."""
    done = subprocess.run([sys.executable, "-c", HOLDERS], capture_output=True, text=True, timeout=120, check=True)
    if done.stdout.strip() == "skip":
        pytest.skip("numpy here has no BLAS of its own that threadpoolctl finds")
    assert done.stdout.split() == ["[1]", "[1]", "True", "[1]", "True"]


def test_masks_from_the_thread_pool_equal_the_serial_ones(monkeypatch):
    logits = np.random.default_rng(0).normal(size=(12, 78, 78)).astype(np.float32)
    axis_y, axis_x = direct_axis(78, 450, "float32"), direct_axis(78, 800, "float32")
    monkeypatch.setattr(blas_threads, "PARALLEL_WORK_PER_MASK", float("inf"))
    serial = threshold_resized(logits, axis_y, axis_x, np.float32(0.0)).dense()
    monkeypatch.setattr(blas_threads, "PARALLEL_WORK_PER_MASK", 0.0)
    monkeypatch.setattr(blas_threads, "decode_workers", lambda: 3)
    pooled = threshold_resized(logits, axis_y, axis_x, np.float32(0.0)).dense()
    assert serial.any() and np.array_equal(serial, pooled)


IDLE_CPU = """
import sys, time
import numpy as np
from maskbench.pipeline.bilinear import direct_axis, threshold_resized
rng = np.random.default_rng(0)
if sys.argv[1] == "decode":  # RF-DETR-Seg's worst case: 100 scattered masks over a 1600x900 frame
    threshold_resized(rng.normal(size=(100, 78, 78)).astype(np.float32), direct_axis(78, 900, "float32"),
                      direct_axis(78, 1600, "float32"), np.float32(0.0))
else:  # one product of the size the decoding does, on every BLAS thread
    rng.random((900, 78), np.float32) @ rng.random((78, 1600), np.float32)
start = time.process_time()
time.sleep(0.1)
print((time.process_time() - start) * 1000)
"""


def idle_cpu_ms(kind: str) -> float:
    done = subprocess.run([sys.executable, "-c", IDLE_CPU, kind], capture_output=True, text=True, timeout=120,
                          check=True)
    return float(done.stdout.strip())


def test_no_blas_thread_spins_after_a_decoding():
    if max(blas_threads_now(), default=1) < 2:
        pytest.skip("one BLAS thread here: nothing can spin")
    plain = idle_cpu_ms("plain")
    if plain < 20:
        pytest.skip(f"this BLAS does not spin after a product ({plain:.1f} ms CPU in 100 ms idle)")
    assert idle_cpu_ms("decode") < 10
