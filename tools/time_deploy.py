"""Latency of a deployed bundle (``maskbench.deploy``), timed as ``maskbench benchmark`` times a
job: the same frames (the embedded nuScenes sample's three front cameras by default), one warm-up
call, then each frame ``--repeat`` times, whole calls (preprocess + graph + post-processing).

    .venv/bin/python tools/time_deploy.py BUNDLE_DIR [--repeat 3] [--images DIR] [--cameras A,B]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import maskbench.deploy
from maskbench.data.frames import load_frames
from maskbench.data.sources import STUDY_CAMERAS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", default=None, help="image folder (default: the embedded nuScenes sample)")
    parser.add_argument("--cameras", default=None, help="nuScenes cameras (default: the study's three; "
                        "none for a plain --images folder)")
    args = parser.parse_args()
    model = maskbench.deploy.load(args.bundle)
    cameras = args.cameras.split(",") if args.cameras else (None if args.images else list(STUDY_CAMERAS))
    frames = [frame.image for frame in load_frames(args.images, cameras)]
    model(frames[0])
    times = []
    for _ in range(args.repeat):
        for image in frames:
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"deployed {args.bundle}: mean {statistics.mean(times) * 1e3:.1f} ms, median "
          f"{statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms over {len(times)} calls "
          f"({len(frames)} frames); process peak RSS {peak_mib:.0f} MiB; torch loaded: {'torch' in sys.modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
