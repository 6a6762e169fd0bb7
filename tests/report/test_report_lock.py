"""`maskbench report --out` and `maskbench export --out` hold their folder (issue 30), as benchmark,
predict and evaluate do (maskbench/out_lock.py): a second writer on a held folder stops with one
line naming the holder, before any work, or waits for it with --wait, so two reports on one
folder are serialised. The holder is a small Python process (no torch)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from maskbench.cli.main import main
from maskbench.utils.out_lock import LOCK_FILE

SRC = Path(__file__).resolve().parents[2] / "src"
HOLDER = """
import sys
from pathlib import Path
from maskbench.utils.out_lock import hold_output_folder
with hold_output_folder(Path(sys.argv[1]), command="maskbench report --out the-folder"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(10)


def test_a_report_on_a_held_folder_stops_then_waits_its_turn(results_dir, tmp_path, capsys):
    folder = tmp_path / "report"
    holder = _hold(folder)
    try:
        assert main(["report", "--results", str(results_dir), "--out", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {folder} is in use by another maskbench run: pid {holder.pid} "
                              "(maskbench report --out the-folder)") and "\n" not in err
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # nothing written

        codes: list[int] = []
        second = threading.Thread(target=lambda: codes.append(main(["report", "--results", str(results_dir),
                                                                    "--out", str(folder), "--wait"])))
        second.start()
        deadline = time.monotonic() + 30
        while "waiting for" not in (said := capsys.readouterr().out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"waiting for {folder}: in use by pid {holder.pid}" in said
        time.sleep(0.3)
        assert second.is_alive() and not (folder / "report.html").exists()  # serialised: not before the holder
    finally:
        _release(holder)
    second.join(60)
    assert codes == [0] and (folder / "report.html").is_file()


def test_a_report_into_a_running_benchmarks_folder_stops(results_dir, capsys):
    """Without --out the report goes to the results folder, which a running benchmark holds."""
    holder = _hold(results_dir)
    try:
        assert main(["report", "--results", str(results_dir)]) == 2
    finally:
        _release(holder)
    assert f"error: {results_dir} is in use by another maskbench run" in capsys.readouterr().err


def test_export_on_a_held_folder_stops_before_any_model_work(tmp_path, capsys):
    folder = tmp_path / "export"
    holder = _hold(folder)
    try:
        assert main(["export", "--model", "r50", "--runtime", "onnxruntime", "--out", str(folder)]) == 2
    finally:
        _release(holder)
    assert f"error: {folder} is in use by another maskbench run: pid {holder.pid}" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]
