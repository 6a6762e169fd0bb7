"""``@pytest.mark.slow``: tests of minutes (e.g. torch.compile with inductor on 2 CPU cores),
skipped unless ``MASKBENCH_SLOW_TESTS=1``; CI runs their fast counterparts."""

import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes on 2 CPU cores; run with MASKBENCH_SLOW_TESTS=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MASKBENCH_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow (minutes); set MASKBENCH_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
