"""The parts of the replay without threads or clocks: queue policies, figures from events,
the stability rule, the machine sensors on laid-out files."""

from __future__ import annotations

import pytest

from maskbench.rig.metrics import FrameEvent, Outcome, StabilityRule, WindowFigures, camera_figures
from maskbench.rig.queues import CameraQueues, Offer, QueuePolicy
from maskbench.rig.sensors import cpu_mhz, temperatures_c

from .standin import Frame, tiny_image


def offer(camera: str, index: int) -> Offer:
    return Offer(Frame(camera, index, index, "t", tiny_image), float(index))


def test_latest_keeps_the_newest_frame_and_reports_the_overtaken():
    dropped: list[Offer] = []
    queues = CameraQueues(["A", "B"], QueuePolicy.LATEST, dropped.append)
    for i in range(3):
        queues.offer(offer("A", i))
    queues.offer(offer("B", 1))
    assert [o.frame.index for o in dropped] == [0, 1]
    assert queues.take().frame.camera == "B"  # B's head (1.0) is older than A's (2.0)
    assert queues.take().frame.index == 2
    queues.close()
    assert queues.take() is None


def test_all_keeps_every_frame_in_order():
    queues = CameraQueues(["A"], QueuePolicy.ALL, lambda o: pytest.fail("nothing is dropped"))
    for i in range(4):
        queues.offer(offer("A", i))
    assert queues.max_depth["A"] == 4
    assert [o.frame.index for o in queues.discard()] == [0, 1, 2, 3]


def test_simultaneous_frames_are_gathered_one_per_camera():
    queues = CameraQueues(["A", "B"], QueuePolicy.ALL, lambda o: None)
    queues.offer(offer("A", 0))
    queues.offer(offer("A", 1))
    queues.offer(offer("B", 0))
    batch = queues.take_simultaneous(0.0, lambda: 0.0, limit=2)
    assert sorted((o.frame.camera, o.frame.index) for o in batch) == [("A", 0), ("B", 0)]
    # only A waits now, and its gather time has passed: a short batch
    assert [o.frame.index for o in queues.take_simultaneous(0.5, lambda: 10.0, limit=2)] == [1]


def event(outcome: Outcome, latency: float) -> FrameEvent:
    return FrameEvent("A", 0, 1.0, outcome, 1.0 + latency)


def test_a_miss_is_late_dropped_or_undecodable():
    events = [event(Outcome.PROCESSED, 0.05)] * 6 + [event(Outcome.PROCESSED, 0.2), event(Outcome.DROPPED, 0),
                                                     event(Outcome.DECODE_FAILED, 0), event(Outcome.UNFINISHED, 0)]
    figures = camera_figures("A", events, 2.0, 100.0, 1)
    assert (figures.offered, figures.processed, figures.dropped, figures.misses) == (10, 7, 1, 4)
    assert figures.miss_share == 0.4
    assert figures.processed_hz == 3.5 and figures.latency.max_ms == pytest.approx(200)
    assert camera_figures("A", events, 2.0, None, 1).misses is None


def window(hz: float, p99: float | None) -> WindowFigures:
    return WindowFigures(0, 0.0, 1.0, int(hz), hz, p99, None, None, {})


def test_stability_rule_is_perf_analyzers():
    rule = StabilityRule(windows=3, tolerance=0.10)
    assert rule.holds([window(5, 500), window(20, 100), window(21, 105), window(19, 98)])
    assert not rule.holds([window(20, 100), window(21, 105)])  # too few
    assert not rule.holds([window(20, 100), window(20, 130), window(20, 100)])  # p99 moves
    assert not rule.holds([window(20, 100), window(26, 100), window(20, 100)])  # the rate moves
    assert StabilityRule(latency=False).holds([window(20, 100), window(20, 300), window(20, 100)])


def test_sensors_read_cpufreq_cpuinfo_and_thermal_zones(tmp_path):
    assert cpu_mhz(tmp_path) is None and temperatures_c(tmp_path) == {}
    (tmp_path / "proc").mkdir()
    cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2000.000\nprocessor\t: 1\ncpu MHz\t\t: 3000.0\n"
    (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    assert cpu_mhz(tmp_path) == 2500.0
    for n, khz in ((0, "1200000"), (1, "1400000")):
        folder = tmp_path / f"sys/devices/system/cpu/cpu{n}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(khz + "\n")
    assert cpu_mhz(tmp_path) == 1300.0  # cpufreq first
    for n, (kind, milli) in enumerate((("x86_pkg_temp", "54000"), ("acpitz", "40500"), ("acpitz", "41000"))):
        zone = tmp_path / f"sys/class/thermal/thermal_zone{n}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert temperatures_c(tmp_path) == {"x86_pkg_temp": 54.0, "acpitz": 40.5, "acpitz:2": 41.0}
