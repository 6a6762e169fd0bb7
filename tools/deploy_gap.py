"""Where a deployed bundle's engine call loses time against the benchmark's, in one process.

The deploy gap (docs/deploy.md) was measured between two processes; this script times, in one
process and interleaved call by call (one timing at any moment), the same compiled graph fed in
the ways the two paths differ:

- ``deploy feeds``: the bundle's own call (numpy ``preprocess_array`` -> ``array_feeds``);
- ``aligned feeds``: the same values copied into a 64-byte-aligned buffer (torch's allocator aligns
  to 64 bytes, numpy's to 16: the benchmark feeds a torch tensor's buffer);
- ``torch feeds``: the benchmark's preprocessing (``models.inputs.preprocess`` -> ``.numpy()``),
  when torch is installed;
- ``second compile``: the same IR compiled again with the same config (does one compiled copy
  run slower than another?).

    .venv/bin/python tools/deploy_gap.py BUNDLE_DIR [--rounds 20] [--image FILE]

Prints each variant's median engine ms and its ratio to ``deploy feeds`` with a 95 % interval
from the paired calls (maskbench.results.intervals).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import maskbench.deploy
from maskbench.data.frames import load_frames
from maskbench.data.images import load_image
from maskbench.pipeline.graph_sessions import compile_config
from maskbench.results.intervals import ratio_interval


def aligned_copy(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """``array``'s values in a fresh buffer whose address is a multiple of ``alignment``."""
    raw = np.empty(array.nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    out = raw[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def variants(model, image: np.ndarray) -> dict[str, Callable[[], object]]:
    feeds, _ = model.prepare(image)
    engine = model.engine
    found: dict[str, Callable[[], object]] = {
        "deploy feeds": lambda: engine(feeds),
        "aligned feeds": (lambda aligned: lambda: engine(aligned))({k: aligned_copy(v) for k, v in feeds.items()}),
    }
    try:
        from maskbench.models.inputs import preprocess
        from maskbench.pipeline.graph_io import array_feeds
        from maskbench.pipeline.preprocess import ResizeMode

        m = model.manifest
        size = tuple(m.input_size) if m.input_size is not None else None
        tensor, meta = preprocess(image, ResizeMode(m.mode), size, model.input_format)  # type: ignore[arg-type]
        torch_feeds = array_feeds(tensor.numpy(), meta.img_shape, model.target)
        found["torch feeds"] = lambda: engine(torch_feeds)
    except ImportError:
        pass
    compiled = getattr(engine, "compiled", None)
    if compiled is not None:
        import openvino as ov

        from maskbench.deploy.engines import OpenVinoEngine

        core = ov.Core()
        m = model.manifest
        again = core.compile_model(core.read_model(str(model.folder / m.artifact)), "CPU",
                                   compile_config(int(compiled.get_property("INFERENCE_NUM_THREADS")), m.precision))
        second = OpenVinoEngine(again, m.output_names)
        found["second compile"] = lambda: second(feeds)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--image", default=None, help="a frame (default: the embedded CAM_FRONT)")
    args = parser.parse_args()
    model = maskbench.deploy.load(args.bundle)
    image = load_image(args.image) if args.image else load_frames(cameras=["CAM_FRONT"])[0].image
    calls = variants(model, image)
    for call in calls.values():  # warm-up: each variant's first call allocates
        call()
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_index in range(args.rounds):
        order = list(calls) if round_index % 2 == 0 else list(reversed(calls))
        for name in order:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    m = model.manifest
    print(f"{m.model} {m.runtime} {m.precision}: engine call, {args.rounds} interleaved rounds")
    base = times["deploy feeds"]
    for name, values in times.items():
        ratio = ratio_interval(values, base, paired=True)
        print(f"  {name:15s} median {statistics.median(values) * 1e3:7.1f} ms   ratio to deploy feeds "
              f"{ratio.value:.3f} [{ratio.low:.3f}-{ratio.high:.3f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
