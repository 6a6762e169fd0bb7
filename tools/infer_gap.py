"""Where the rig's synchronous OpenVINO call loses time against ``benchmark_app -hint latency``
(docs/rig.md, Open): the same IR (the rig's bundle) and one process, the call timed

- back to back, and after an idle gap (``--gaps``: the frames of one camera arrive to an idle
  machine), interleaved round by round so the host's drift hits every variant alike;
- on the rig's real preprocessed frame and on benchmark_app's kind of input (uniform random);
- under the rig's compile config and under variants of it (``--configs``, below);
- with nothing between the calls, as benchmark_app, or with what the rig's sync replay runs
  between them (``--between pipeline``: the next JPEG decoded, the frame preprocessed, the
  last call's outputs decoded into detections; the real frame's call then takes the fresh
  arrays), timing the call alone.

    python tools/infer_gap.py --model rtmdet-ins-s --rounds 12

Prints each variant's median and its 95 % interval (ms; the benchmark's bootstrap,
``maskbench.results.intervals``) and writes them with
``--out``. Compile config variants: ``rig`` (maskbench's: 2 threads, latency hint), ``hint``
(benchmark_app's: the latency hint alone), ``pin`` (rig + CPU pinning), ``denormals`` (rig +
flushing denormals to zero)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from rig_ceiling import rig_args  # noqa: E402

from maskbench.deploy.model import load  # noqa: E402
from maskbench.pipeline.graph_sessions import compile_config  # noqa: E402
from maskbench.results.intervals import median_interval  # noqa: E402
from maskbench.rig import cli  # noqa: E402


def configs(threads: int, precision: str) -> dict[str, dict[str, str]]:
    rig = compile_config(threads, precision)
    return {"rig": rig, "hint": {"PERFORMANCE_HINT": "LATENCY"},
            "pin": {**rig, "ENABLE_CPU_PINNING": "YES"},
            "denormals": {**rig, "CPU_DENORMALS_OPTIMIZATION": "YES"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="rtmdet-ins-s")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=3, help="calls per variant and round")
    parser.add_argument("--gaps", default="0,0.3", help="idle seconds before each call")
    parser.add_argument("--configs", default="rig,hint,pin,denormals")
    parser.add_argument("--between", default="none", help="work before each call: none, pipeline (comma-separated)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    rig = rig_args(args.model, args.precision, [])
    streams = cli.open_streams(rig)
    bundle = cli.cached_bundle(rig, streams)
    frame = cli.first_frame_of_each_camera(streams)[0]
    encoded = next(iter(streams.frames()))  # decoded again before each call by --between pipeline
    threads = rig.threads or 2
    wanted = args.configs.split(",")
    models = {name: load(bundle, threads, openvino_config=lambda _m, c=config: c)
              for name, config in configs(threads, args.precision).items() if name in wanted}
    any_model = next(iter(models.values()))
    feeds, _ = any_model.prepare(frame)
    name, array = next(iter(feeds.items()))
    low, high = float(array.min()), float(array.max())
    inputs = {"frame": feeds,
              "uniform": {name: np.random.default_rng(0).uniform(low, high, array.shape).astype(array.dtype)}}
    for label, model in models.items():
        compiled = model.engine.compiled
        shown = {key: str(compiled.get_property(key)) for key in
                 ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "ENABLE_CPU_PINNING", "SCHEDULING_CORE_TYPE",
                  "CPU_DENORMALS_OPTIMIZATION", "INFERENCE_PRECISION_HINT")}
        print(label, shown)
        for _ in range(2):  # warm-up
            model.engine(feeds)
    gaps = [float(g) for g in args.gaps.split(",")]
    between = args.between.split(",")
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for label, model in models.items():
            for kind, feed in inputs.items():
                for gap, work in ((g, w) for g in gaps for w in between):
                    key = f"{label} {kind} gap={gap:g}s" + (f" between={work}" if work != "none" else "")
                    outputs = model.engine(feed)  # the previous call, then the gap
                    for _ in range(args.calls):
                        call_feed = feed
                        if work == "pipeline":  # the frame's call takes the fresh frame's own arrays
                            fresh, meta = model.prepare(encoded.decode())
                            model.finish(outputs, meta)
                            call_feed = fresh if kind == "frame" else feed
                        time.sleep(gap)
                        start = time.perf_counter()
                        outputs = model.engine(call_feed)
                        times.setdefault(key, []).append((time.perf_counter() - start) * 1000.0)
    rows = []
    for key, values in times.items():
        interval = median_interval(values)
        median, lo, hi = interval.value, interval.low, interval.high
        rows.append({"variant": key, "median_ms": round(median, 1), "ci95": [round(lo, 1), round(hi, 1)],
                     "n": len(values)})
        print(f"{key:34s} {median:7.1f} ms [{lo:.1f}, {hi:.1f}]  n={len(values)}")
    if args.out:
        args.out.write_text(json.dumps({"model": args.model, "precision": args.precision, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
