"""Fixtures of the report tests: a study-like set of records and a results folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_bench import make_results_dir, study_set

from maskbench.results.records import BenchmarkRecord


@pytest.fixture
def study_records() -> list[BenchmarkRecord]:
    return study_set()


@pytest.fixture
def results_dir(tmp_path, study_records) -> Path:
    return make_results_dir(tmp_path, study_records)
