"""``maskbench rig``'s own parts: configurations, refusals before any model work, and (slow: it
exports a model) one replay of a built bundle to rig.json (the robot's replay of a bundle:
tests/deploy/test_deploy.py)."""

from __future__ import annotations

import argparse
import json

import pytest

from maskbench.pipeline.manifest import BundleError
from maskbench.rig import bundle as rig_bundle
from maskbench.rig import cli, command
from maskbench.rig.bundle import bundle_executor
from maskbench.rig.configs import ConfigKind, ExecConfig, parse_config
from maskbench.utils.errors import MaskbenchError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="maskbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["rig", *argv])


def test_configurations():
    assert parse_config("sync") == ExecConfig(ConfigKind.SYNC)
    assert parse_config("streams:3") == ExecConfig(ConfigKind.STREAMS, 3)
    assert parse_config("streams") == ExecConfig(ConfigKind.STREAMS, None) and str(parse_config("streams")) == "streams"
    assert str(parse_config("batch")) == "batch"
    for bad, says in (("turbo", "give sync, streams:N"), ("streams:0", "1 or more"), ("sync:2", "only streams")):
        with pytest.raises(MaskbenchError, match=says):
            parse_config(bad)
    assert command._config_names("all") == ["sync", "streams", "batch"]


def test_batch_refuses_a_one_image_bundle(tmp_path, monkeypatch):
    one_image = argparse.Namespace(batch=1)
    monkeypatch.setattr(rig_bundle, "load", lambda folder, threads: one_image)
    with pytest.raises(BundleError, match="takes one image; --config batch needs a static-batch bundle"):
        bundle_executor(tmp_path, ExecConfig(ConfigKind.BATCH))


@pytest.mark.parametrize("argv, says", [(["--max-miss", "5"], "between 0 and 1"), (["--duration", "0"], "positive"),
                                        (["--config", "sync,fast"], "give sync")])
def test_bad_options_are_one_line_before_any_model_work(argv, says, monkeypatch):
    monkeypatch.setattr(cli, "cached_bundle", lambda *a: pytest.fail("no model work"))
    monkeypatch.setattr(cli, "open_streams", lambda *a: pytest.fail("no source work"))
    with pytest.raises(MaskbenchError, match=says):
        cli.run(parse(*argv))


@pytest.mark.slow
def test_rig_replays_a_built_bundle_into_rig_json(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = parse("--runtime", "onnxruntime", "--input-size", "320x192", "--duration", "2",
                 "--config", "sync,streams:2,batch", "--deadline", "60000", "--out", str(out))
    assert cli.run(args) == 0
    data = json.loads((out / command.RESULTS_FILE).read_text())
    assert [r["executor"] for r in data["results"]] == ["sync", "streams:2"]
    assert data["model"]["runtime"] == "onnxruntime" and data["model"]["input_size"] == [320, 192]
    assert len(data["cameras"]) == 3 and data["machine"]
    for result in data["results"]:
        assert result["overall"]["offered"] >= 60 and result["overall"]["processed"] >= 1
        assert result["energy"]["statements"] or result["energy"]["readings"]
