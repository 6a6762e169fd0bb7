"""Shared fixtures and the ``slow`` marker.

``@pytest.mark.slow``: tests of minutes on 2 CPU cores (e.g. torch.compile with inductor, the
3x zoo variants' parity), skipped unless ``MASKBENCH_SLOW_TESTS=1``; CI runs their fast
counterparts. (pytest-xdist with one torch thread per worker was tried: the eager reference of
the chaotic random-weight nets changes with the thread count, and one conversion check on
CAM_BACK then matched 99/100; the suite keeps torch's default threads.)
"""

import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

# The tests' own cache folder (ONNX exports, int8 artifacts, calibrations), new for each run and
# inherited by every subprocess: a run never passes against files that older code exported.
# MASKBENCH_TEST_CACHE names a folder to keep between runs instead (its files are still checked by
# key, which hashes the graph-building source).
_OWN_CACHE = not os.environ.get("MASKBENCH_TEST_CACHE")
os.environ["MASKBENCH_CACHE"] = os.environ.get("MASKBENCH_TEST_CACHE") or tempfile.mkdtemp(prefix="maskbench-tests-")

from maskbench.data.images import load_image  # noqa: E402 - MASKBENCH_CACHE must be set before maskbench is imported
from maskbench.data.sources import embedded_nuscenes, find_images  # noqa: E402 - ditto (MASKBENCH_CACHE first)


@pytest.fixture(scope="session", autouse=True)
def _machine_peak_cached_once():
    """``maskbench benchmark`` probes the machine's peak before its workers (~3 s) and caches it
    only when the machine is quiet, which a test suite never is: every benchmark run of the
    suite would probe again. So it is probed once here and cached in the suite's cache
    folder for the thread counts the tests use (tests/perf/test_peak.py tests the probe and its
    load rule in folders of their own)."""
    import json

    try:
        import openvino  # noqa: F401 - the CPU peak is OpenVINO's

        from maskbench.benchmark import peak
    except ImportError:
        return
    for threads in sorted({1, peak.default_threads()}):
        path = peak.cache_path(threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(peak.probe_peak(threads).to_dict()), encoding="utf-8")


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that runs a benchmark job in this process (``run_job`` with ``threads=1``) sets
    torch's process-wide thread count; later tests' eager references of the chaotic random-weight
    nets depend on it (a conversion check then matched 99/100), so each test leaves it as it found it."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def front_frame() -> np.ndarray:
    """The embedded 1600x900 nuScenes front-camera frame, RGB uint8."""
    return load_image(find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes on 2 CPU cores; run with MASKBENCH_SLOW_TESTS=1")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["MASKBENCH_CACHE"], ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MASKBENCH_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow (minutes); set MASKBENCH_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 1 MB tmpfs (root on Linux only; the test is skipped elsewhere)."""
    from disk_faults import mounted_tmpfs

    yield from mounted_tmpfs(tmp_path)
