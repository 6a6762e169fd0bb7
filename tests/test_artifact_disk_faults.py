"""A full disk while an artifact is written (int8 quantization, the export command's OpenVINO IR):
one line, and nothing half-written left where the cache (or the user) would take it from.
Stand-in libraries write the files, so nothing is exported or quantized here."""

import errno
import os
from types import SimpleNamespace

import pytest
from disk_faults import no_temporary_files

from maskbench.export.quantize import Quantizer, quantized_artifact
from maskbench.runtimes.cli import save_openvino_ir
from maskbench.utils.write_errors import WriteFailed


def _quantizer(build) -> Quantizer:
    return Quantizer("stand-in", (".xml", ".bin"), lambda: {"stand-in": "1"}, {}, build)


def _half_written(onnx_path, feeds, out_path):
    out_path.write_text("<net>")
    out_path.with_suffix(".bin").write_bytes(b"\0" * 10)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _silent_failure(onnx_path, feeds, out_path):  # OpenVINO's save_model on a full disk
    out_path.write_text("<net>")
    raise RuntimeError("basic_ios::clear: iostream error")


@pytest.mark.parametrize("build", [_half_written, _silent_failure])
def test_a_full_disk_while_quantizing_leaves_no_artifact(tmp_path, monkeypatch, build):
    onnx_path = tmp_path / "r50.onnx"
    onnx_path.write_bytes(b"fp32 graph" * 1000)
    monkeypatch.setattr("maskbench.utils.files.free_bytes", lambda folder: 100)  # below the fp32 graph's 10 kB
    with pytest.raises(WriteFailed) as caught:
        quantized_artifact(_quantizer(build), onnx_path, [], "fingerprint")
    assert caught.value.code == errno.ENOSPC and caught.value.folder == tmp_path
    assert "\n" not in str(caught.value) and "cache folder (MASKBENCH_CACHE)" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r50.onnx"]  # no artifact, no key, no temporary folder

    def whole(onnx_path, feeds, out_path):
        out_path.write_text("<net>")
        out_path.with_suffix(".bin").write_bytes(b"\1" * 10)

    built = quantized_artifact(_quantizer(whole), onnx_path, [], "fingerprint")
    assert built.built and quantized_artifact(_quantizer(whole), onnx_path, [], "fingerprint").built is False


def test_an_other_library_error_stays_a_quantization_error(tmp_path):
    onnx_path = tmp_path / "r50.onnx"
    onnx_path.write_bytes(b"fp32 graph")
    with pytest.raises(Exception, match="int8 quantization of r50.onnx with stand-in failed: basic_ios"):
        quantized_artifact(_quantizer(_silent_failure), onnx_path, [], "fingerprint")  # space enough here


def test_the_openvino_ir_of_export_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    onnx_path = tmp_path / "r50.onnx"
    onnx_path.write_bytes(b"fp32 graph" * 1000)

    def save_model(model, xml, compress_to_fp16):
        with open(xml, "w") as file:
            file.write("<net>")
        raise RuntimeError("basic_ios::clear: iostream error")

    ov = SimpleNamespace(Core=lambda: SimpleNamespace(read_model=lambda path: "model"), save_model=save_model)
    monkeypatch.setattr("maskbench.utils.files.free_bytes", lambda folder: 100)
    with pytest.raises(WriteFailed) as caught:
        save_openvino_ir(ov, onnx_path)
    assert str(caught.value).startswith(f"no space left in {tmp_path} ([Errno 28]): about 0.1 MB free needed for "
                                        "the OpenVINO IR")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r50.onnx"] and no_temporary_files(tmp_path)

    def save_whole(model, xml, compress_to_fp16):
        for suffix, text in ((".xml", "<net>"), (".bin", "weights")):
            with open(os.path.splitext(xml)[0] + suffix, "w") as file:
                file.write(text)

    ov.save_model = save_whole
    assert save_openvino_ir(ov, onnx_path).read_text() == "<net>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r50.bin", "r50.onnx", "r50.xml"]
