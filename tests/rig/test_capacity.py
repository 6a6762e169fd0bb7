"""The capacity search: against arithmetic (an injected trial that holds while the offered rate
fits the service rate) and once against real replays of the stand-in model."""

from __future__ import annotations

import math

from maskbench.rig.capacity import LoadUnit, Trial, find_capacity
from maskbench.rig.energy import EnergyMeters
from maskbench.rig.executors import StreamsExecutor
from maskbench.rig.metrics import StabilityRule
from maskbench.rig.replay import ReplayOptions, replay

from .standin import SleepPipeline, camera_frames


def service_trial(service_s: float, streams: int, fps: float):
    """Holds while N cameras at fps offer no more than the streams serve."""
    return lambda cameras: Trial(cameras, cameras * fps <= streams / service_s)


def test_search_finds_the_analytic_number_of_cameras():
    for service_s, streams, fps in ((0.05, 1, 12), (0.05, 2, 12), (0.01, 3, 10), (0.03, 1, 0.5)):
        expected = min(64, math.floor(streams / service_s / fps))
        result = find_capacity(service_trial(service_s, streams, fps), limit=64)
        assert result.capacity == expected, (service_s, streams, fps)
        assert result.confirmed == (expected > 0)
        assert result.at_limit == (expected == 64)
    result = find_capacity(service_trial(0.01, 4, 10), limit=64)  # 40 cameras: 1 2 4 8 16 32 64 48 40 44 42 41
    assert [t.load for t in result.trials] == [1, 2, 4, 8, 16, 32, 64, 48, 40, 44, 42, 41, 40]


def test_search_over_the_rate():
    result = find_capacity(lambda fps: Trial(fps, 3 * fps <= 1 / 0.05), unit=LoadUnit.FPS, step=0.5, limit=60)
    assert result.unit == "fps" and result.capacity == 6.5  # 3 cameras x 6.5 Hz <= 20 frames/s < 3 x 7


def test_a_repeat_that_fails_steps_the_answer_down():
    calls: dict[float, int] = {}

    def flaky(n: float) -> Trial:
        calls[n] = calls.get(n, 0) + 1
        return Trial(n, n <= 5 and not (n == 5 and calls[n] == 2))  # 5 holds once, then misses

    result = find_capacity(flaky, repeats=3)
    assert result.capacity == 4 and result.confirmed
    assert calls[4] == 3 and calls[5] == 2


def test_nothing_holds():
    result = find_capacity(lambda n: Trial(n, False))
    assert (result.capacity, result.confirmed, len(result.trials)) == (0, False, 1)


def test_search_with_real_replays_finds_floor_of_streams_over_service_and_rate():
    """S = 50 ms, 12 Hz, two streams: 40 frames/s serve floor(40/12) = 3 cameras within 150 ms
    (the third simultaneous frame waits one service time: ~100 ms); 4 cameras offer 48/s and
    `latest` drops ~17 %."""

    def trial(cameras: float) -> Trial:
        n = int(cameras)
        options = ReplayOptions(3.0, deadline_ms=150, window_s=0.5, stop_when_stable=StabilityRule(latency=False),
                                min_duration_s=1.5)
        result = replay(camera_frames(n, 12, 4), StreamsExecutor([SleepPipeline(0.05), SleepPipeline(0.05)]),
                        options, meters=EnergyMeters.none())
        return Trial.of(cameras, result, max_miss=0.05)

    result = find_capacity(trial, limit=8, repeats=2)
    assert result.capacity == 3 and result.confirmed
    assert [t.load for t in result.trials][:4] == [1, 2, 4, 3]
