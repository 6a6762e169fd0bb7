"""The README's "Python API" example runs as written (in a temporary folder, so its out/ lands there)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def api_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def quick_example() -> str:
    section = README.read_text().split("## What it does", 1)[0]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_readme_first_screen_example_runs(tmp_path, monkeypatch, capsys):
    """The five lines under the picture, on the embedded front-camera frame saved as front.jpg."""
    import shutil

    from maskbench.data.sources import embedded_nuscenes, find_images

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    shutil.copy(find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path, tmp_path / "front.jpg")
    exec(compile(quick_example(), "README.md", "exec"), {})  # noqa: S102 - our own README
    assert capsys.readouterr().out.strip() == "100 (100, 900, 1600)"


def test_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    exec(compile(api_example(), "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("100 (100, 4) (100, 360, 640)"), lines  # random weights: exactly 100 detections
    assert lines[1] == "100"
    assert 0.0 <= float(lines[2]) <= 1.0 or lines[2] == "-1.0"
    status, mean_ms = lines[3].split()
    assert status == "ok" and float(mean_ms) > 0
    assert (tmp_path / "out" / "api" / "results.jsonl").is_file()


def test_import_maskbench_is_light():
    import subprocess
    import sys

    code = "import sys, maskbench; maskbench.__all__; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
