"""Write failures as one line (files.writing_in / write_errors.WriteFailed), atomic writes that
leave nothing half-written, and JSON-lines appends that add a whole line or nothing."""

import errno
import json
import os

import pytest
from disk_faults import READ_ONLY_WAYS, disk_full_on, no_temporary_files, unwritable_folder

from maskbench.pipeline.coco_results import write_json_atomic
from maskbench.utils.files import append_line, atomic_open, space_estimate, write_failure, writing_in
from maskbench.utils.write_errors import MB, WriteFailed, errno_in, megabytes


def test_an_interrupted_atomic_write_leaves_no_file_under_the_final_name(tmp_path):
    path = tmp_path / "results.json"
    with pytest.raises(ValueError):  # NaN: json.dump has written the first items when it fails
        write_json_atomic(path, [{"score": 0.5}] * 1000 + [{"score": float("nan")}])
    assert not path.exists() and no_temporary_files(tmp_path)
    path.write_text("[1]")
    with pytest.raises(KeyboardInterrupt), atomic_open(path) as file:
        file.write("[2, 3")
        raise KeyboardInterrupt
    assert path.read_text() == "[1]" and no_temporary_files(tmp_path)


def test_a_full_disk_in_an_atomic_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text("[1]")

    def fsync(fd):  # the data were buffered: the disk is found full when they are flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(WriteFailed) as caught, space_estimate(tmp_path, lambda: (3 * MB, "2 frame(s)")):
        write_json_atomic(path, [2])
    message = str(caught.value)
    assert message.startswith(f"no space left in {tmp_path} (writing results.json, [Errno 28]): about 3.0 MB free "
                              "needed for 2 frame(s), ")
    assert message.endswith("MB free now; free space there or choose another --out") and "\n" not in message
    assert path.read_text() == "[1]" and no_temporary_files(tmp_path)


@pytest.mark.parametrize("code, start, fix", [
    (errno.EROFS, "{folder} is on a read-only file system", "choose another --out (or remount it read-write)"),
    (errno.EACCES, "no permission to write in {folder}", "make it writable (chmod u+w) or choose another --out"),
    (errno.EIO, "input/output error in {folder}", "check the disk (dmesg) or choose another --out"),
    (errno.EDQUOT, "disk quota exceeded in {folder}", "free space within your quota or choose another --out"),
])
def test_each_write_error_names_the_folder_and_the_fix(tmp_path, code, start, fix):
    with pytest.raises(WriteFailed) as caught, writing_in(tmp_path, "a.json"):
        raise OSError(code, os.strerror(code))
    message = str(caught.value)
    assert message.startswith(start.format(folder=tmp_path) + f" (writing a.json, [Errno {code}])")
    assert message.endswith(fix) and "\n" not in message
    assert errno_in(message) == code


def test_only_write_errors_are_translated(tmp_path):
    with pytest.raises(FileNotFoundError), writing_in(tmp_path):
        raise FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "x"))
    # no permission to read an input outside the folder is not a write failure...
    assert write_failure(PermissionError(errno.EACCES, "denied", "/etc/shadow"), tmp_path) is None
    # ...a full disk is one wherever it happens, named by its own folder
    failure = write_failure(OSError(errno.ENOSPC, "full", "/elsewhere/x.onnx"), tmp_path)
    assert failure is not None and str(failure.folder) == "/elsewhere" and failure.file == "x.onnx"
    assert megabytes(1) == "0.1" and megabytes(10 * MB + 1) == "11" and megabytes(MB - 1, round_up=False) == "0.9"


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_a_read_only_folder_is_one_line(tmp_path, monkeypatch, how):
    with unwritable_folder(monkeypatch, tmp_path / "out", how) as folder:
        with pytest.raises(WriteFailed) as atomic:
            write_json_atomic(folder / "report" / "results.json", [])
        with pytest.raises(WriteFailed) as appended:
            append_line(folder / "results.jsonl", "{}")
    for caught in (atomic, appended):
        assert caught.value.code in (errno.EROFS, errno.EACCES) and str(folder) in str(caught.value)
    assert list(folder.iterdir()) == []


def test_an_append_is_the_whole_line_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    append_line(path, '{"a": 1}')
    disk_full_on(monkeypatch, "results.jsonl")  # a short write, then ENOSPC
    with pytest.raises(WriteFailed) as caught:
        append_line(path, json.dumps({"b": "x" * 100}))
    assert caught.value.code == errno.ENOSPC and caught.value.file == "results.jsonl"
    assert path.read_text() == '{"a": 1}\n'  # the torn part was cut off again


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2, "c')  # a crash mid-write
    append_line(path, '{"d": 4}', last_line_ok=_is_json)
    assert path.read_text() == '{"a": 1}\n{"d": 4}\n'
    path.write_bytes(b'{"a": 1}\n' + b"\0" * 70_000 + b"\n")  # zeros after a power cut, longer than a read block
    append_line(path, '{"d": 4}', last_line_ok=_is_json)
    assert path.read_text() == '{"a": 1}\n{"d": 4}\n'


def test_a_real_full_tmpfs(small_tmpfs):
    path = small_tmpfs / "big.json"
    with pytest.raises(WriteFailed) as caught, space_estimate(small_tmpfs, lambda: (2 * MB, "the test")):
        write_json_atomic(path, ["x" * 1000] * 2000)  # 2 MB into 1 MB
    message = str(caught.value)
    assert message.startswith(f"no space left in {small_tmpfs} (writing big.json, [Errno 28]): about 2.0 MB free "
                               "needed for the test, ")
    assert not path.exists() and no_temporary_files(small_tmpfs)
    assert os.statvfs(small_tmpfs).f_bfree == os.statvfs(small_tmpfs).f_blocks  # the temporary file was removed


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
