"""The TensorRT backend's pure logic, without TensorRT (it cannot be installed here): engine
cache keys and staleness, and the builder calls against a stand-in ``trt`` module that records
them. Whether a real engine builds and runs is untested (see runtimes/tensorrt_.py)."""

from __future__ import annotations

import json
import types

import pytest

from maskbench.runtimes.tensorrt_ import (
    WORKSPACE_BYTES,
    TensorRTError,
    build_engine,
    cached_engine,
    engine_key,
    engine_path,
    key_path,
)

ONNX_KEY = {"model": "r50", "weights_sha256": "ab" * 32, "input_hw": [800, 1344]}
GPU = {"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


def _key(**changes):
    key = engine_key(ONNX_KEY, "10.3.0", "fp16", GPU)
    return {**key, **changes}


class _Builds:
    def __init__(self):
        self.count = 0

    def __call__(self) -> bytes:
        self.count += 1
        return f"engine #{self.count}".encode()


def test_engine_is_built_once_then_taken_from_the_cache(tmp_path):
    path = engine_path(tmp_path / "r50_stretch_1344x800_0123.onnx", "fp16")
    assert path.name == "r50_stretch_1344x800_0123_fp16.engine"
    build = _Builds()
    assert cached_engine(path, _key(), build) == (b"engine #1", True)
    assert cached_engine(path, _key(), build) == (b"engine #1", False) and build.count == 1
    stored = json.loads(key_path(path).read_text())
    assert stored["key"] == _key() and "untested" in stored["note"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, key_path(path).name], "no temporary files"


@pytest.mark.parametrize("change", ["tensorrt", "gpu", "compute_capability", "precision", "onnx_key_sha256"])
def test_a_foreign_or_stale_engine_is_rebuilt(tmp_path, change):
    path = tmp_path / "m_fp16.engine"
    build = _Builds()
    cached_engine(path, _key(), build)
    other = _key(**{change: "something else"})
    assert cached_engine(path, other, build) == (b"engine #2", True)
    assert json.loads(key_path(path).read_text())["key"] == other


def test_tampered_truncated_or_keyless_engines_are_rebuilt(tmp_path):
    path = tmp_path / "m_fp32.engine"
    build = _Builds()
    cached_engine(path, _key(), build)
    path.write_bytes(b"engine #1 but changed")
    assert cached_engine(path, _key(), build)[1] and build.count == 2
    key_path(path).unlink()
    assert cached_engine(path, _key(), build)[1] and build.count == 3
    key_path(path).write_text("{not json")
    assert cached_engine(path, _key(), build)[1] and build.count == 4


def test_engine_key_follows_each_input():
    base = engine_key(ONNX_KEY, "10.3.0", "fp32", GPU)
    variants = [engine_key({**ONNX_KEY, "input_hw": [768, 1344]}, "10.3.0", "fp32", GPU),
                engine_key(ONNX_KEY, "10.4.0", "fp32", GPU), engine_key(ONNX_KEY, "10.3.0", "fp16", GPU),
                engine_key(ONNX_KEY, "10.3.0", "fp32", {**GPU, "compute_capability": "8.9"})]
    assert all(v != base for v in variants) and len({json.dumps(v, sort_keys=True) for v in variants}) == 4


def _fake_trt(parse_ok=True, build_ok=True):
    """A stand-in for the calls build_engine makes, recording them."""
    calls = []

    class Parser:
        num_errors = 0 if parse_ok else 2

        def __init__(self, network, logger):
            calls.append(("OnnxParser",))

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return parse_ok

        def get_error(self, index):
            return f"node {index}: unsupported\n  operator"

    class Config:
        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag):
            calls.append(("set_flag", flag))

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return object()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            return b"serialized" if build_ok else None

    trt = types.SimpleNamespace(Builder=Builder, OnnxParser=Parser, MemoryPoolType=types.SimpleNamespace(
        WORKSPACE="WORKSPACE"), BuilderFlag=types.SimpleNamespace(FP16="FP16"))
    return trt, calls


def test_builder_sets_fp16_only_for_fp16(tmp_path):
    for precision, wants_fp16 in (("fp32", False), ("fp16", True)):
        trt, calls = _fake_trt()
        assert build_engine(trt, tmp_path / "m.onnx", precision, logger=None) == b"serialized"
        assert ("create_network", 0) in calls and ("set_memory_pool_limit", "WORKSPACE", WORKSPACE_BYTES) in calls
        assert (("set_flag", "FP16") in calls) == wants_fp16


def test_parse_and_build_failures_are_one_line(tmp_path):
    trt, _ = _fake_trt(parse_ok=False)
    with pytest.raises(TensorRTError) as info:
        build_engine(trt, tmp_path / "m.onnx", "fp32", logger=None)
    expected = "TensorRT could not parse m.onnx: node 0: unsupported operator; node 1: unsupported operator"
    assert str(info.value) == expected
    trt, _ = _fake_trt(build_ok=False)
    with pytest.raises(TensorRTError, match="could not build a fp16 engine from m.onnx"):
        build_engine(trt, tmp_path / "m.onnx", "fp16", logger=None)
