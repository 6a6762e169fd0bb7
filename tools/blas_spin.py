"""What numpy's spinning BLAS threads cost a deployed bundle, and what holding them to one thread
(pipeline/blas_threads.py) gives back: end-to-end calls in one process, interleaved call by call.

- ``free``: the mask decoding as before, numpy's BLAS on all its threads, masks one after another;
- ``held``: as shipped, BLAS on one thread during the decoding (the masks spread over a few Python
  threads when their work is large).

    .venv/bin/python tools/blas_spin.py BUNDLE_DIR [BUNDLE_DIR ...] [--rounds 12]

Prints per bundle each mode's median split (preprocess, engine, decoding, end to end) and the
end-to-end ratio held / free with its 95 % interval (paired calls, maskbench.results.intervals).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import maskbench.deploy
from maskbench.data.frames import load_frames
from maskbench.pipeline import bilinear, postprocess
from maskbench.results.intervals import ratio_interval

SHIPPED = (bilinear.map_masks, postprocess.one_blas_thread)


def free_map(work, count, multiply_adds) -> None:
    for i in range(count):
        work(i)


def use(mode: str) -> None:
    if mode == "free":
        bilinear.map_masks, postprocess.one_blas_thread = free_map, nullcontext  # type: ignore[assignment]
    else:
        bilinear.map_masks, postprocess.one_blas_thread = SHIPPED  # type: ignore[assignment]


def timed_call(model, image) -> tuple[float, float, float, float]:
    start = time.perf_counter()
    feeds, meta = model.prepare(image)
    prepared = time.perf_counter()
    outputs = model.engine(feeds)
    inferred = time.perf_counter()
    model.finish(outputs, meta)
    done = time.perf_counter()
    return prepared - start, inferred - prepared, done - inferred, done - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    image = load_frames(cameras=["CAM_FRONT"])[0].image
    for folder in args.bundles:
        model = maskbench.deploy.load(folder)
        m = model.manifest
        times: dict[str, list[tuple[float, ...]]] = {"free": [], "held": []}
        for round_index in range(args.rounds + 1):
            for mode in ("free", "held") if round_index % 2 == 0 else ("held", "free"):
                use(mode)
                timed_call(model, image)  # the decoding before the timed call is this mode's too
                if round_index:  # round 0 warms up
                    times[mode].append(timed_call(model, image))
        use("held")
        print(f"{m.model} {m.runtime} {m.precision} ({len(times['free'])} calls each, CAM_FRONT 1600x900)")
        for mode, rows in times.items():
            pre, engine, post, total = (statistics.median(column) * 1e3 for column in zip(*rows))
            print(f"  {mode}: pre {pre:6.1f}  engine {engine:7.1f}  decoding {post:6.1f}  end to end {total:7.1f} ms")
        ratio = ratio_interval([r[3] for r in times["held"]], [r[3] for r in times["free"]], paired=True)
        print(f"  held / free end to end: {ratio.value:.3f} [{ratio.low:.3f}-{ratio.high:.3f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
