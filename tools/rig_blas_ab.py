"""What the BLAS hold's thread fix gives the rig: one-camera synchronous replays of the same bundle,
alternating "as before" (a hold taken in a rig thread is ignored by threadpoolctl >= 3.8 while the
main thread, which warmed the model up, lives) and "fixed" (the hold takes OpenBLAS's control:
``pipeline/blas_threads._take_openblas_control``), in one process.

    .venv/bin/python tools/rig_blas_ab.py --model rtmdet-ins-s --pairs 3 --seconds 20

Prints each replay's end-to-end p50 / p99 and sustained frames/s, the ratio of the median p50s
(fixed / before) and the median frames/s. ``--rate-factor`` scales the camera's 12 Hz: below what
one synchronous stream serves, the latency without queueing (the BLAS threads spin in the idle
time between frames); at 1 (12 Hz, far above it), the stream is saturated and each inference
starts right after the last decoding, which is where spinning threads cost.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import contextmanager

from maskbench.pipeline import blas_threads
from maskbench.rig import command
from maskbench.rig.configs import parse_config
from maskbench.rig.replay import ReplayOptions


@contextmanager
def as_before_the_fix():
    shipped = blas_threads._take_openblas_control
    blas_threads._take_openblas_control = lambda: None
    try:
        yield
    finally:
        blas_threads._take_openblas_control = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="rtmdet-ins-s")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate-factor", type=float, default=0.15, help="of the cameras' 12 Hz (default: 1.8 Hz)")
    args = parser.parse_args()

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from rig_ceiling import rig_args

    from maskbench.rig import cli

    rig = rig_args(args.model, args.precision, [])
    streams = cli.open_streams(rig)
    bundle = cli.cached_bundle(rig, streams)
    options = ReplayOptions(args.seconds, deadline_ms=1000.0, window_s=max(1.0, args.seconds / 10))
    p50s: dict[str, list[float]] = {"before": [], "fixed": []}
    rates: dict[str, list[float]] = {"before": [], "fixed": []}
    for pair in range(args.pairs):
        for label in (("before", "fixed") if pair % 2 == 0 else ("fixed", "before")):
            if label == "before":
                with as_before_the_fix():
                    result = command.replay_once(streams, bundle, parse_config("sync"), options, None, cameras=1,
                                                 rate_factor=args.rate_factor)
            else:
                result = command.replay_once(streams, bundle, parse_config("sync"), options, None, cameras=1,
                                             rate_factor=args.rate_factor)
            latency = result.overall.latency
            assert latency is not None
            p50s[label].append(latency.p50_ms)
            print(f"pair {pair + 1} {label}: p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms, "
                  f"{result.overall.processed_hz:.2f} frames/s", flush=True)
            rates[label].append(result.overall.processed_hz)
    ratio = statistics.median(p50s["fixed"]) / statistics.median(p50s["before"])
    print(f"{args.model} {args.precision}: median p50 fixed / before = {ratio:.3f} "
          f"({statistics.median(p50s['fixed']):.1f} / {statistics.median(p50s['before']):.1f} ms); frames/s "
          f"{statistics.median(rates['fixed']):.2f} / {statistics.median(rates['before']):.2f}")


if __name__ == "__main__":
    main()
