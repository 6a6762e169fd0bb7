"""One writer per output folder (maskbench/out_lock.py): a second run stops with one line naming
the holder, or waits; a lock left by a killed run is taken over; the lock is not inherited.
The holders are small Python processes (no torch); `maskbench predict`/`evaluate` on a held
folder stop before any model work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskbench.cli.main import main
from maskbench.utils.errors import OutputFolderBusy
from maskbench.utils.out_lock import LOCK_FILE, hold_output_folder, holder_of

SRC = Path(__file__).resolve().parents[1] / "src"
HOLDER_COMMAND = "maskbench benchmark --out the-folder"
# Holds the folder until its stdin closes; with a third argument, first starts a child that
# does not close inherited descriptors (close_fds=False) and prints its pid.
HOLDER = """
import subprocess, sys, time
from pathlib import Path
from maskbench.utils.out_lock import hold_output_folder
with hold_output_folder(Path(sys.argv[1]), command=sys.argv[2]):
    if len(sys.argv) > 3:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], close_fds=False)
        print(child.pid, flush=True)
    print("held", flush=True)
    sys.stdin.read()
"""


def _start_holder(folder: Path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), HOLDER_COMMAND, *extra],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
    return process


def _held_by(process: subprocess.Popen) -> list[str]:
    lines = []
    while not lines or lines[-1] != "held":
        line = process.stdout.readline().strip()
        assert line or process.poll() is None, "the holder ended early"
        lines.append(line)
    return lines


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_second_run_stops_with_one_line_naming_the_holder(tmp_path):
    folder = tmp_path / "out"
    holder = _start_holder(folder)
    try:
        _held_by(holder)
        with pytest.raises(OutputFolderBusy) as error, hold_output_folder(folder):
            pytest.fail("the folder is held by another process")
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"{folder} is in use by another maskbench run: pid {holder.pid} ({HOLDER_COMMAND})")
        assert "wait for it to finish, use another --out, or pass --wait" in message
    finally:
        holder.stdin.close()
        assert holder.wait(10) == 0
    assert holder_of(folder) is None  # released cleanly: the file is emptied
    said = []
    with hold_output_folder(folder, say=said.append):
        assert holder_of(folder).pid == os.getpid()
    assert said == []  # nothing to take over


def test_wait_waits_for_the_holder_then_proceeds(tmp_path):
    folder = tmp_path / "out"
    holder = _start_holder(folder)
    _held_by(holder)
    said = []

    def say(line):
        said.append(line)
        holder.stdin.close()  # the first run finishes while the second waits

    started = time.monotonic()
    with hold_output_folder(folder, wait=True, say=say):
        assert holder.wait(10) == 0  # it had to end before we got the folder
        assert holder_of(folder).pid == os.getpid()
    assert time.monotonic() - started < 10
    assert len(said) == 1 and said[0].startswith(f"waiting for {folder}: in use by pid {holder.pid} "
                                                 f"({HOLDER_COMMAND})")


def test_a_killed_holder_is_taken_over_with_a_line(tmp_path):
    folder = tmp_path / "out"
    holder = _start_holder(folder)
    _held_by(holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said = []
    with hold_output_folder(folder, say=said.append):
        pass
    assert len(said) == 1, said
    assert said[0].startswith(f"{folder}: taking over the lock left by pid {holder.pid} ({HOLDER_COMMAND})")
    assert said[0].endswith("which was killed")


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "command": "maskbench predict", "host": os.uname()[1],
                                                "started_at": "2025-01-01T00:00:00+00:00"}))
    said = []
    with hold_output_folder(folder, say=said.append):
        assert holder_of(folder).pid == os.getpid()
    assert len(said) == 1 and f"left by pid {pid} (maskbench predict)" in said[0] and "was killed" in said[0]


def test_the_lock_is_not_inherited_by_children(tmp_path):
    """A child that outlives its run (close_fds=False, the worst case) must not keep the folder."""
    folder = tmp_path / "out"
    holder = _start_holder(folder, "spawn-child")
    child_pid = int(_held_by(holder)[0])
    try:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        said = []
        with hold_output_folder(folder, say=said.append):  # would raise if the child held the lock
            os.kill(child_pid, 0)  # the child is still alive
        assert len(said) == 1 and "was killed" in said[0]
    finally:
        os.kill(child_pid, signal.SIGKILL)


def test_one_process_may_hold_a_folder_twice(tmp_path):
    folder = tmp_path / "out"
    with hold_output_folder(folder), hold_output_folder(folder):
        assert holder_of(folder).pid == os.getpid()
    assert holder_of(folder) is None


@pytest.mark.parametrize("command", ["predict", "evaluate", "benchmark"])
def test_commands_that_write_a_folder_stop_on_a_held_one(tmp_path, capsys, command):
    folder = tmp_path / "out"
    holder = _start_holder(folder)
    try:
        _held_by(holder)
        assert main([command, "--out", str(folder)]) == 2
    finally:
        holder.stdin.close()
        holder.wait(10)
    captured = capsys.readouterr()
    (line,) = _lines(captured.err)
    assert line.startswith(f"error: {folder} is in use by another maskbench run: pid {holder.pid} ({HOLDER_COMMAND})")
    assert line.endswith("pass --wait") and not captured.out
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # nothing written
