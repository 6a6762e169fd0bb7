"""``maskbench rig`` appends its records to OUT/results.jsonl (beside rig.json): one per
configuration, a single replay or a capacity search with its trials as the load curve. The model
is the stand-in with a fixed service time (S = 50 ms: one stream serves 20 frames/s, three
cameras at 12 Hz offer 36), so the verdicts follow from arithmetic."""

from __future__ import annotations

import argparse
import json

import pytest

from maskbench.results.records import read_records
from maskbench.results.rig_records import latest_rig_records, read_rig_records
from maskbench.rig import cli, command
from maskbench.rig.capacity import CapacityResult, LoadUnit, Trial, find_capacity
from maskbench.rig.energy import EnergyMeters
from maskbench.rig.executors import StreamsExecutor
from maskbench.rig.records import RunContext, capacity_record
from maskbench.rig.replay import replay

from .standin import SleepPipeline, camera_frames

S = 0.05


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="maskbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["rig", *argv])


@pytest.fixture
def bundle(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"model": "mask-rcnn_r50_fpn_1x_coco", "alias": "r50",
                                                      "runtime": "onnxruntime", "precision": "fp32"}))
    return folder


def standin_replay(streams, bundle, config, options, threads, cameras=None, rate_factor=None):
    """command.replay_once with the stand-in model instead of the bundle's."""
    count = cameras or len(streams.cameras)
    pipelines = [SleepPipeline(S) for _ in range(config.streams or 1)]
    return replay(camera_frames(count, 12 * (rate_factor or 1), options.duration_s + 1), StreamsExecutor(pipelines),
                  options, meters=EnergyMeters.none())


def test_a_rig_run_appends_one_record_per_configuration(tmp_path, bundle, monkeypatch):
    monkeypatch.setattr(command, "replay_once", standin_replay)
    out = tmp_path / "out"
    args = parse("--config", "sync,streams:2", "--duration", "1.5", "--deadline", "150ms", "--out", str(out))
    assert command.run_replay(args, command.open_streams(args), bundle) == 0
    data = json.loads((out / command.RESULTS_FILE).read_text())
    assert [r["executor"] for r in data["results"]] == ["sync", "streams:2"]  # rig.json as before
    records = read_rig_records(out / "results.jsonl")
    assert [(r.model, r.alias, r.runtime, r.config, r.cameras, r.rate_hz, r.deadline_ms) for r in records] == [
        ("mask-rcnn_r50_fpn_1x_coco", "r50", "onnxruntime", "sync", 3, 12.0, 150.0),
        ("mask-rcnn_r50_fpn_1x_coco", "r50", "onnxruntime", "streams:2", 3, 12.0, 150.0)]
    sync, streams = records
    assert not sync.holds and sync.capacity == 0 and sync.miss_share > 0.25  # 1 - 20/36 = 44 % dropped
    assert streams.miss_share < sync.miss_share and sync.zoo_mask_ap == 34.7
    assert sync.curve[0].offered_hz == pytest.approx(36, rel=0.2) and sync.curve[0].p99_ms == sync.p99_ms
    assert sync.energy_statements and not sync.has_energy and sync.machine["cpu"]
    assert read_records(out / "results.jsonl") == []  # the benchmark's reader skips rig lines
    assert command.run_replay(args, command.open_streams(args), bundle) == 0  # a rerun replaces its records
    assert len(read_rig_records(out / "results.jsonl")) == 4
    assert [r.config for r in latest_rig_records(read_rig_records(out / "results.jsonl"))] == ["sync", "streams:2"]


def arithmetic(streams: int):
    """A trial of N cameras at 12 Hz on ``streams`` streams of S: holds while 12 N <= streams / S."""
    def trial(load: float) -> Trial:
        holds = 12 * load <= streams / S
        return Trial(load, holds, 0.0 if holds else 0.4, 100.0 if holds else 900.0, True, 1.0,
                     min(12 * load, streams / S), 0.05, {}, 50.0, 12 * load)
    return trial


def test_a_capacity_search_becomes_one_record_with_its_trials(tmp_path, bundle, monkeypatch):
    monkeypatch.setattr(command, "find_max", lambda args, streams, bundle, config, options: find_capacity(
        arithmetic(config.streams or 1), limit=args.limit))
    out = tmp_path / "out"
    args = parse("--config", "sync,streams:2", "--find-max", "cameras", "--limit", "8", "--out", str(out))
    assert command.run_replay(args, command.open_streams(args), bundle) == 0
    sync, streams = read_rig_records(out / "results.jsonl")
    assert (sync.load_unit, sync.capacity, sync.cameras, sync.holds) == ("cameras", 1.0, 1, True)  # 12 <= 20 < 24
    assert (streams.capacity, streams.cameras, streams.rate_hz) == (3.0, 3, 12.0)  # 36 <= 40 < 48
    assert streams.p99_ms == 100.0 and streams.p50_ms == 50.0 and streams.cpu_s_per_frame == 0.05
    offered = [p.offered_hz for p in streams.curve]
    assert offered == sorted(offered) and {p.offered_hz for p in streams.curve if p.holds} == {12.0, 24.0, 36.0}
    assert not any(p.holds for p in streams.curve if p.offered_hz > 40)


def test_nothing_held_shows_the_smallest_load_tried():
    context = RunContext({"model": "r50", "runtime": "openvino", "precision": "fp32"}, {"cpu": "x"}, "embedded", 3,
                         12.0, 150.0, 0.01, "latest", {})
    failing = find_capacity(lambda load: Trial(load, False, 0.5, 700.0 + load, offered_hz=12 * load),
                            unit=LoadUnit.CAMERAS, limit=4)
    record = capacity_record(context, "sync", failing)
    assert isinstance(failing, CapacityResult) and failing.capacity == 0
    assert (record.holds, record.capacity, record.cameras, record.p99_ms) == (False, 0.0, 3, 701.0)
