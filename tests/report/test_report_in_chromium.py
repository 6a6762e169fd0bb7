"""report.html renders in a real browser: headless Chromium takes a screenshot of it, which
must be the window's size, not blank, and show the Pareto plot (its front colour).

Skipped where Chromium is not installed (Debian: ``apt-get install -y chromium``); CI installs
it. Offline flags keep Chromium from reaching the network, which also proves the page needs
none.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from maskbench.report.benchmark_report import write_report
from maskbench.report.pareto import FRONT_COLOUR

WIDTH, HEIGHT = 1280, 2000
TIMEOUT_S = 60


def _chromium() -> str | None:
    return os.environ.get("MASKBENCH_CHROMIUM") or next(
        (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def _screenshot(page, png, profile) -> subprocess.CompletedProcess:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(results_dir, study_records, tmp_path):
    page = write_report(study_records, results_dir).html
    png = tmp_path / "screenshot.png"
    result = _screenshot(page, png, tmp_path / "profile")
    assert result.returncode == 0 and png.exists(), f"chromium failed: {result.stderr[-2000:]}"
    with Image.open(png) as shot:
        assert shot.size == (WIDTH, HEIGHT)
        pixels = np.asarray(shot.convert("RGB"))
    packed = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) | pixels[..., 2]
    colours = np.unique(packed)  # np.unique(axis=0) on 2.5 M rows takes seconds
    assert len(colours) > 200, f"only {len(colours)} colours: the page looks blank"
    front = np.array([int(FRONT_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    near_front = np.abs(pixels.astype(int) - front).max(axis=2) <= 12
    assert near_front.sum() > 500, "the Pareto plot's front line and points are not on the screenshot"
