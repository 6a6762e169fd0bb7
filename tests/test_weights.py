"""Tests for maskbench.weights: download over loopback HTTP, safe loading, state-dict checks."""

from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import socket
import sys
import threading
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from maskbench.utils.errors import CheckpointError, DownloadError
from maskbench.weights import (
    check_state_dict,
    checkpoint_cache_dir,
    download_checkpoint,
    load_state_dict,
    sha256_prefix_from_url,
)

# ---------------------------------------------------------------------------
# A loopback HTTP server with Range support and a switch to cut transfers
# ---------------------------------------------------------------------------


class CheckpointServer:
    """Serves one payload at any path; knobs let a test imitate awkward servers."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.honour_range = True
        self.cut_after: int | None = None  # body bytes sent before dropping the connection
        self.status_override: int | None = None
        self.requests: list[dict] = []  # one {"path", "range"} per request
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/download/mmdet/{name}"

    def _handler_class(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                range_header = self.headers.get("Range")
                server.requests.append({"path": self.path, "range": range_header})
                if server.status_override is not None:
                    self.send_error(server.status_override)
                    return
                size = len(server.payload)
                start = 0
                if range_header and server.honour_range:
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(body[: server.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        return Handler


def _save_bytes(obj, tmp_path: Path, legacy: bool = False) -> bytes:
    path = tmp_path / "made.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.unlink()
    return data


def _tiny_checkpoint() -> dict:
    state = OrderedDict(
        [
            ("backbone.conv1.weight", torch.randn(4, 3, 3, 3)),
            ("backbone.bn1.running_mean", torch.zeros(4)),
            ("backbone.bn1.num_batches_tracked", torch.tensor(7)),
        ]
    )
    return {"meta": {"mmdet_version": "2.0.0", "CLASSES": ("person", "car"), "epoch": 12}, "state_dict": state}


@pytest.fixture
def payload(tmp_path) -> bytes:
    return _save_bytes(_tiny_checkpoint(), tmp_path)


@pytest.fixture
def server(payload, monkeypatch):
    # A proxy from the environment would swallow loopback requests.
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    checkpoint_server = CheckpointServer(payload)
    checkpoint_server.thread.start()
    yield checkpoint_server
    checkpoint_server.httpd.shutdown()
    checkpoint_server.httpd.server_close()


def _named_url(server: CheckpointServer, stem: str = "mask_rcnn_tiny_20200101") -> tuple[str, str]:
    prefix = hashlib.sha256(server.payload).hexdigest()[:8]
    return server.url(f"{stem}-{prefix}.pth"), prefix


# ---------------------------------------------------------------------------
# Cache directory and URL conventions
# ---------------------------------------------------------------------------


def test_cache_dir_prefers_maskbench_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checkpoint_cache_dir() == tmp_path / "mine" / "checkpoints"  # one root for every cache
    monkeypatch.delenv("MASKBENCH_CACHE")
    assert checkpoint_cache_dir() == tmp_path / "xdg" / "maskbench" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert checkpoint_cache_dir() == tmp_path / "home" / ".cache" / "maskbench" / "checkpoints"


def test_sha256_prefix_comes_from_the_mmdetection_file_name():
    url = (
        "https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/"
        "mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth"
    )
    assert sha256_prefix_from_url(url) == "d4b0c5d6"
    with pytest.raises(DownloadError, match="sha256"):
        sha256_prefix_from_url("https://example.org/model_final.pth")


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------


def test_download_verifies_then_second_call_is_a_cache_hit(server, tmp_path):
    url, _ = _named_url(server)
    prefix = sha256_prefix_from_url(url)
    path = download_checkpoint(url, prefix, cache_dir=tmp_path / "cache", progress=False, timeout=5)
    assert path == tmp_path / "cache" / url.rsplit("/", 1)[-1]
    assert path.read_bytes() == server.payload
    assert not path.with_name(path.name + ".part").exists()
    assert len(server.requests) == 1

    again = download_checkpoint(url, prefix, cache_dir=tmp_path / "cache", progress=False, timeout=5)
    assert again == path
    assert len(server.requests) == 1, "a verified cached file must not trigger a request"


def test_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    url, prefix = _named_url(server)
    cached = tmp_path / url.rsplit("/", 1)[-1]
    cached.write_bytes(b"bit rot")
    path = download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    assert len(server.requests) == 1
    assert path == cached and path.read_bytes() == server.payload


def test_file_name_is_unquoted(server, tmp_path):
    url, prefix = _named_url(server, stem="mask%2Brcnn")
    path = download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    assert path.name == f"mask+rcnn-{prefix}.pth"


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    url, prefix = _named_url(server)
    half = len(server.payload) // 2
    server.cut_after = half
    with pytest.raises(DownloadError, match="cannot download"):
        download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    part = tmp_path / (url.rsplit("/", 1)[-1] + ".part")
    assert part.stat().st_size == half, "bytes received before the cut must be kept"

    server.cut_after = None
    path = download_checkpoint(url, prefix, cache_dir=tmp_path, progress=True, timeout=5)
    assert server.requests[-1]["range"] == f"bytes={half}-"
    assert path.read_bytes() == server.payload
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url, prefix = _named_url(server)
    part = tmp_path / (url.rsplit("/", 1)[-1] + ".part")
    part.write_bytes(b"stale bytes from another attempt")
    server.honour_range = False
    path = download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    assert server.requests[-1]["range"] == f"bytes={len(b'stale bytes from another attempt')}-"
    assert path.read_bytes() == server.payload


def test_complete_part_file_is_verified_after_416(server, tmp_path):
    url, prefix = _named_url(server)
    (tmp_path / (url.rsplit("/", 1)[-1] + ".part")).write_bytes(server.payload)
    path = download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    assert server.requests[-1]["range"] == f"bytes={len(server.payload)}-"
    assert path.read_bytes() == server.payload


def test_hash_mismatch_raises_and_leaves_no_file(server, tmp_path):
    url, actual_prefix = _named_url(server)
    wrong_prefix = "0" * 8 if not actual_prefix.startswith("0") else "f" * 8
    with pytest.raises(DownloadError) as caught:
        download_checkpoint(url, wrong_prefix, cache_dir=tmp_path, progress=False, timeout=5)
    message = str(caught.value)
    assert url in message and wrong_prefix in message and actual_prefix in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_offline_error_names_the_cache_path(tmp_path):
    with socket.socket() as probe:  # a port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth"
    with pytest.raises(DownloadError) as caught:
        download_checkpoint(url, "d4b0c5d6", cache_dir=tmp_path, progress=False, timeout=5)
    message = str(caught.value)
    assert message.startswith(f"cannot download {url} (")
    assert str(tmp_path / "mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth") in message
    assert "--weights" in message and "\n" not in message


def test_http_404_is_a_download_error(server, tmp_path):
    server.status_override = 404
    url, prefix = _named_url(server)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_checkpoint(url, prefix, cache_dir=tmp_path, progress=False, timeout=5)
    assert not (tmp_path / url.rsplit("/", 1)[-1]).exists()


# ---------------------------------------------------------------------------
# Safe loading
# ---------------------------------------------------------------------------

FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def _write_checkpoint(obj, tmp_path: Path, legacy: bool) -> Path:
    path = tmp_path / "checkpoint.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


@FORMATS
def test_loads_state_dict_next_to_meta_and_optimizer(tmp_path, legacy):
    checkpoint = _tiny_checkpoint()
    checkpoint["optimizer"] = {"state": {0: {"momentum_buffer": torch.ones(2)}}, "param_groups": [{"lr": 0.02}]}
    loaded = load_state_dict(_write_checkpoint(checkpoint, tmp_path, legacy))
    assert list(loaded) == list(checkpoint["state_dict"])
    for key, tensor in checkpoint["state_dict"].items():
        assert torch.equal(loaded[key], tensor)


def test_bare_state_dict_and_dataparallel_prefix(tmp_path):
    state = {"module.head.weight": torch.ones(2, 2), "module.head.bias": torch.zeros(2)}
    loaded = load_state_dict(_write_checkpoint(state, tmp_path, legacy=False))
    assert set(loaded) == {"head.weight", "head.bias"}


def test_half_precision_weights_become_float32(tmp_path):
    state = {
        "a": torch.randn(3, dtype=torch.float16),
        "b": torch.randn(3, dtype=torch.bfloat16),
        "count": torch.tensor(5),
    }
    loaded = load_state_dict(_write_checkpoint({"state_dict": state}, tmp_path, legacy=False))
    assert loaded["a"].dtype == torch.float32 and loaded["b"].dtype == torch.float32
    assert torch.equal(loaded["a"], state["a"].float())
    assert loaded["count"].dtype == torch.int64


_FAKE_MODULE = "mmengine.logging.history_buffer"
_fake_calls: list[str] = []


class _HistoryBufferStandIn:
    """Mimics mmengine's HistoryBuffer; records any call so the test sees whether it ran."""

    def __init__(self):
        _fake_calls.append("__init__")
        self.max_length = 1000000
        self._log_history = np.array([0.5, 0.25])
        self._count_history = np.array([1, 1])

    def __setstate__(self, state):
        _fake_calls.append("__setstate__")
        self.__dict__.update(state)


@pytest.fixture
def fake_mmengine(monkeypatch):
    """Register the stand-in as mmengine's real HistoryBuffer so pickle records that name."""
    for name in ("mmengine", "mmengine.logging", _FAKE_MODULE):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    _HistoryBufferStandIn.__module__ = _FAKE_MODULE
    _HistoryBufferStandIn.__qualname__ = "HistoryBuffer"
    sys.modules[_FAKE_MODULE].HistoryBuffer = _HistoryBufferStandIn
    yield _HistoryBufferStandIn
    _HistoryBufferStandIn.__module__ = __name__
    _HistoryBufferStandIn.__qualname__ = "_HistoryBufferStandIn"


@FORMATS
def test_mmengine_metadata_loads_without_running_its_classes(tmp_path, legacy, fake_mmengine):
    checkpoint = _tiny_checkpoint()
    checkpoint["meta"]["seed"] = np.int64(42)
    checkpoint["meta"]["palette"] = np.arange(6, dtype=np.uint8).reshape(2, 3)
    checkpoint["message_hub"] = {"log_scalars": {"train/loss": fake_mmengine()}, "runtime_info": {"epoch": 12}}
    path = _write_checkpoint(checkpoint, tmp_path, legacy)
    assert f"{_FAKE_MODULE}\nHistoryBuffer".encode() in path.read_bytes(), "the pickle must name the real class"
    _fake_calls.clear()

    loaded = load_state_dict(path)
    assert _fake_calls == [], "the metadata class must be stubbed, never called"
    assert torch.equal(loaded["backbone.conv1.weight"], checkpoint["state_dict"]["backbone.conv1.weight"])


class _RunsShell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@FORMATS
def test_refuses_a_pickle_that_would_run_a_command(tmp_path, legacy):
    marker = tmp_path / "pwned"
    checkpoint = _tiny_checkpoint()
    checkpoint["meta"]["payload"] = _RunsShell(marker)
    path = _write_checkpoint(checkpoint, tmp_path, legacy)
    with pytest.raises(CheckpointError, match=r"refusing to load.*'posix\.system'") as caught:
        load_state_dict(path)
    assert str(path) in str(caught.value)
    assert not marker.exists()


def test_refuses_code_in_the_legacy_header_pickles(tmp_path):
    # The legacy format reads its first pickles with pickle_module.load, not Unpickler: cover that path.
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_RunsShell(marker), protocol=2))
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "dangerous",
    [b"cbuiltins\neval\n(S'1'\ntR.", b"cfunctools\npartial\n(cos\ngetcwd\ntR.", b"csubprocess\nPopen\n(S'x'\ntR."],
    ids=["eval", "partial", "subprocess"],
)
def test_refuses_other_code_running_globals(tmp_path, dangerous):
    path = tmp_path / "evil.pth"
    path.write_bytes(dangerous)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_state_dict(path)


@FORMATS
def test_truncated_file_is_a_checkpoint_error(tmp_path, legacy):
    path = _write_checkpoint(_tiny_checkpoint(), tmp_path, legacy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint") as caught:
        load_state_dict(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_non_torch_and_missing_files_are_checkpoint_errors(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_state_dict(text)
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "absent.pth")


def test_non_tensor_in_state_dict_is_rejected(tmp_path):
    path = _write_checkpoint({"state_dict": {"w": torch.ones(1), "note": "hello"}}, tmp_path, legacy=False)
    with pytest.raises(CheckpointError, match="'note' is a str"):
        load_state_dict(path)


# ---------------------------------------------------------------------------
# check_state_dict
# ---------------------------------------------------------------------------


def _model_state() -> dict[str, torch.Tensor]:
    state = {f"layer{i}.weight": torch.zeros(8, 4) for i in range(10)}
    state["bn.num_batches_tracked"] = torch.tensor(0)
    return state


def test_matching_state_dict_passes_even_without_num_batches_tracked():
    loaded = {k: v for k, v in _model_state().items() if not k.endswith("num_batches_tracked")}
    check_state_dict(_model_state(), loaded, "mask-rcnn_r50", "ckpt.pth")


def test_missing_unexpected_and_shape_mismatch_are_listed():
    loaded = dict(_model_state())
    del loaded["layer0.weight"]
    loaded["extra.bias"] = torch.zeros(3)
    loaded["layer1.weight"] = torch.zeros(80, 4)
    with pytest.raises(CheckpointError) as caught:
        check_state_dict(_model_state(), loaded, "mask-rcnn_r50", "ckpt.pth")
    message = str(caught.value)
    assert message.startswith("ckpt.pth: ") and "mask-rcnn_r50" in message
    assert "1 missing keys (layer0.weight)" in message
    assert "1 unexpected keys (extra.bias)" in message
    assert "layer1.weight: expected (8, 4) vs found (80, 4)" in message
    assert "another model" not in message and "\n" not in message


def test_checkpoint_of_another_model_is_named_as_such():
    loaded = {f"other{i}.weight": torch.zeros(1) for i in range(9)}
    with pytest.raises(CheckpointError) as caught:
        check_state_dict(_model_state(), loaded, "mask-rcnn_r50", "ckpt.pth")
    message = str(caught.value)
    assert "10 missing keys" in message and "and 5 more" in message
    assert "9 unexpected keys" in message and "and 4 more" in message
    assert "probably a checkpoint of another model" in message
