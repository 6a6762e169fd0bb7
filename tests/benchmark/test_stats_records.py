import json

import numpy as np
import pytest

from maskbench.results.records import (
    CRASHED,
    OK,
    BenchmarkJob,
    BenchmarkRecord,
    append_record,
    latest_records,
    read_records,
)
from maskbench.results.stats import LatencyStats
from maskbench.utils.errors import MaskbenchError


def test_latency_stats_match_numpy():
    seconds = [0.120, 0.100, 0.110, 0.300, 0.105, 0.115, 0.125]
    stats = LatencyStats.from_seconds(seconds)
    ms = np.array(seconds) * 1000
    assert stats.count == 7
    assert stats.mean_ms == pytest.approx(ms.mean())
    assert stats.std_ms == pytest.approx(ms.std(ddof=1))
    assert stats.p50_ms == pytest.approx(np.median(ms))
    assert stats.p95_ms == pytest.approx(np.percentile(ms, 95))
    assert stats.min_ms == pytest.approx(100.0) and stats.max_ms == pytest.approx(300.0)
    assert stats.images_per_s == pytest.approx(1000.0 / ms.mean())
    assert LatencyStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


def test_latency_stats_of_one_call_and_of_none():
    assert LatencyStats.from_seconds([0.5]).std_ms == 0.0
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])


def _job(**changes) -> BenchmarkJob:
    base = dict(model="mask-rcnn_r50_fpn_1x_coco", runtime="torch", images=("a.jpg", "b.jpg"),
                cameras=("CAM_FRONT", None))
    base.update(changes)
    return BenchmarkJob(**base)


def test_job_key_is_stable_and_names_what_differs():
    job = _job()
    assert job.key() == BenchmarkJob.from_dict(json.loads(json.dumps(job.to_dict()))).key()
    assert job.key().startswith("mask-rcnn_r50_fpn_1x_coco/torch/fp32/stretch/default#")
    assert _job(input_size=(640, 384)).key().split("#")[0].endswith("/640x384")
    for change in ({"precision": "fp16"}, {"repeat": 5}, {"images": ("a.jpg",)}, {"threads": 1}, {"seed": 1}):
        assert _job(**change).key() != job.key(), change
    assert "/" not in job.slug() and "#" not in job.slug()


def _record(key: str, status: str = OK, mean: float = 100.0) -> BenchmarkRecord:
    return BenchmarkRecord(key=key, job={}, status=status,
                           end_to_end=LatencyStats.from_seconds([mean / 1000]).to_dict())


def test_jsonl_append_read_and_latest(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _record("a", CRASHED))
    append_record(path, _record("b"))
    append_record(path, _record("a", OK, mean=50.0))
    records = read_records(path)
    assert [r.key for r in records] == ["a", "b", "a"]
    latest = latest_records(records)
    assert [(r.key, r.status) for r in latest] == [("a", OK), ("b", OK)]
    assert latest[0].latency().mean_ms == pytest.approx(50.0)


def test_a_torn_last_line_is_skipped_but_a_broken_middle_line_is_an_error(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _record("a"))
    with open(path, "a") as handle:
        handle.write('{"key": "b", "job": {}, "sta')  # killed mid-write
    assert [r.key for r in read_records(path)] == ["a"]
    with open(path, "a") as handle:
        handle.write("\n" + json.dumps(_record("c").to_dict()) + "\n")
    with pytest.raises(MaskbenchError, match=r"results.jsonl:2: not a benchmark record"):
        read_records(path)
    assert read_records(tmp_path / "missing.jsonl") == []
