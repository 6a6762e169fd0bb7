"""The replay engine against queueing arithmetic, with a stand-in model whose inference sleeps a
fixed service time S = 50 ms (one stream: 20 frames/s; two streams: 40 frames/s) and three
cameras at 12 Hz (36 frames/s offered). Tolerances are wide so a loaded 2-core machine gives the
same verdict; each run lasts 2-3 s."""

from __future__ import annotations

import pytest

from maskbench.rig.energy import EnergyMeters
from maskbench.rig.executors import BatchExecutor, StreamsExecutor, sync_executor
from maskbench.rig.metrics import StabilityRule
from maskbench.rig.queues import QueuePolicy
from maskbench.rig.replay import ReplayOptions, RigError, replay

from .standin import SleepPipeline, camera_frames

S = 0.05
OFFERED_HZ = 36.0


def run(executor, seconds=3.0, **options):
    options.setdefault("deadline_ms", 150.0)
    return replay(camera_frames(3, 12, seconds + 1), executor, ReplayOptions(seconds, **options),
                  meters=EnergyMeters.none())


def test_one_stream_processes_its_service_rate_and_latest_drops_the_rest():
    result = run(sync_executor(SleepPipeline(S)))
    overall = result.overall
    assert overall.offered == pytest.approx(OFFERED_HZ * 3, abs=4)
    assert overall.processed_hz == pytest.approx(1 / S, rel=0.2)  # 20 frames/s
    drop_share = overall.dropped / overall.offered
    assert drop_share == pytest.approx(1 - (1 / S) / OFFERED_HZ, abs=0.1)  # 44 %
    assert overall.misses >= overall.dropped and overall.miss_share > 0.3
    assert {c.camera for c in result.cameras} == {"CAM_0", "CAM_1", "CAM_2"}
    assert all(c.max_queue_depth == 1 for c in result.cameras)  # `latest` keeps one frame
    assert sum(c.offered for c in result.cameras) == overall.offered
    assert overall.stages_ms["infer"] == pytest.approx(S * 1000, rel=0.5)


S_FAST = 0.03  # two streams serve 66 frames/s: 55 % busy with three cameras, margin for a loaded CI machine


def test_two_streams_keep_up_with_three_cameras():
    result = run(StreamsExecutor([SleepPipeline(S_FAST), SleepPipeline(S_FAST)]))
    overall = result.overall
    assert result.executor == "streams:2"
    assert overall.dropped <= 0.05 * overall.offered
    assert overall.processed_hz == pytest.approx(OFFERED_HZ, rel=0.15)
    # three simultaneous frames on two streams: the third waits one service time
    assert overall.latency.p50_ms < 150 and overall.miss_share <= 0.05


def test_a_batch_of_the_three_cameras_keeps_up():
    result = run(BatchExecutor(SleepPipeline(S_FAST, batch_size=3), gather_s=0.02))  # 12 calls/s: 36 % busy
    assert result.executor == "batch:3"
    assert result.overall.dropped <= 0.05 * result.overall.offered
    assert result.overall.latency.p50_ms == pytest.approx(S_FAST * 1000, rel=1.0)  # one batched call, no queueing


def test_queue_all_grows_and_latency_with_it():
    result = run(sync_executor(SleepPipeline(S)), queue=QueuePolicy.ALL, window_s=1.0)
    overall = result.overall
    assert overall.dropped == 0
    assert max(c.max_queue_depth for c in result.cameras) >= 5  # 16 frames/s more than it serves
    assert overall.latency.max_ms > 1000  # the backlog after ~3 s: ~48 frames at 20/s
    assert overall.unfinished > 0 and overall.miss_share > 0.3
    assert len(result.windows) >= 2 and result.drift.p99_change > 0.3


def test_decode_failures_are_counted_and_the_run_goes_on():
    frames = camera_frames(1, 10, 3, broken_every=4)
    result = replay(frames, sync_executor(SleepPipeline(0.005)), ReplayOptions(2.0, deadline_ms=100),
                    meters=EnergyMeters.none())
    assert result.overall.decode_failed == 5  # frames 3, 7, 11, 15, 19 of 20
    assert result.overall.processed == 15
    assert "cam0.bag #3: truncated JPEG" in result.overall.first_decode_error
    assert result.overall.misses == 5


def test_a_failing_model_ends_the_run_with_one_line():
    class Failing(SleepPipeline):
        calls = 0

        def infer(self, prepared):
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("graph input mismatch\nsecond line")
            return 0.0

    with pytest.raises(RigError, match="model failed during the replay .sync.: graph input mismatch second line"):
        replay(camera_frames(1, 20, 5), sync_executor(Failing(0.0)), ReplayOptions(3.0),
               meters=EnergyMeters.none())


def test_stable_windows_end_a_trial_early_and_figures_serialise():
    import json

    # windows of 1 s hold 12 frames: one frame early or late moves a window by 8 % (< the 10 % rule)
    options = ReplayOptions(9.0, deadline_ms=150, window_s=1.0, stop_when_stable=StabilityRule(), min_duration_s=3.0)
    result = replay(camera_frames(1, 12, 10), sync_executor(SleepPipeline(0.02)), options, meters=EnergyMeters.none())
    assert result.stable is True and result.seconds < 8.5  # stopped before the 9 s limit
    assert len(result.windows) >= 3
    assert all(w.processed_hz == pytest.approx(12, rel=0.35) for w in result.windows)
    assert result.cpu_s_per_frame is not None and result.peak_rss_mb > 0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "rig" and data["queue"] == "latest" and data["overall"]["camera"] == "all"
