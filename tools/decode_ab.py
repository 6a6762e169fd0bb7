"""Interleaved A/B of a family's mask decoding: the pipeline as committed at REV against the work tree.

Post-processing changes are a few percent of a frame, below what two benchmark runs minutes
apart can tell on a shared host (its calls spread 10-30 %). So both versions run in one process
on the same frames, call by call in alternating order, each right after a real OpenVINO call
on that frame (the network's outputs, and the caches as the network leaves them: the
benchmark's situation; a decoding timed in a warm loop reads ~30 % faster). Both must give the
same masks (checked first). The pipeline modules the decoding reads (the mask windows or canvas,
the resizes, the decoders) are loaded from ``git show REV:...`` under private names.

    .venv/bin/python tools/decode_ab.py --model rtmdet-ins-s [--rev HEAD] [--rounds 10]
    .venv/bin/python tools/decode_ab.py --bundle BUNDLE_DIR ...     # e.g. a rig bundle

``--model``: the keep-ratio input of the benchmark's families table (RF-DETR-Seg: its square
stretch), random weights calibrated on the embedded front frames; ``--bundle``: the bundle's own
input and weights (the rig's: stretched).

Prints each side's mean and median ms per frame and the work tree's ratio to REV (paired, 95 %
interval: maskbench.results.intervals).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from maskbench.benchmark.job_model import random_weights_calibration
from maskbench.data.frames import load_frames
from maskbench.models.factory import create_model
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.predict.predictor import Predictor
from maskbench.results.intervals import ratio_interval
from maskbench.runtimes.registry import get_runtime
from maskbench.zoo import get_family, get_spec, locate

# the decoders' own modules, in import order (each imports only earlier ones of this list); a
# revision has those of them it has (mask_canvas until the masks became windows, windowed_masks after)
PIPELINE = ("mask_canvas", "windowed_masks", "bilinear", "instance_masks", "postprocess")
REPO = Path(__file__).resolve().parents[1]


def decoder_at(rev: str, decode_path: str):
    """The family's decoder (``"maskbench.pipeline.postprocess:name"``) as committed at ``rev``."""
    tag = "".join(c if c.isalnum() else "_" for c in rev)
    loaded: dict[str, types.ModuleType] = {}
    for name in PIPELINE:
        path = f"{rev}:src/maskbench/pipeline/{name}.py"
        if subprocess.run(["git", "cat-file", "-e", path], cwd=REPO, capture_output=True).returncode:
            continue
        source = subprocess.check_output(["git", "show", path], text=True, cwd=REPO)
        for earlier in loaded:
            source = source.replace(f"from .{earlier} import", f"from ._{tag}_{earlier} import")
        module = types.ModuleType(f"maskbench.pipeline._{tag}_{name}")
        module.__package__ = "maskbench.pipeline"
        sys.modules[module.__name__] = module
        exec(compile(source, f"{rev}:{name}.py", "exec"), module.__dict__)
        loaded[name] = module
    return getattr(loaded["postprocess"], decode_path.partition(":")[2])


def model_calls(model: str, images: list[np.ndarray], threads: int) -> tuple[list[Callable[[], tuple]], float]:
    """Per frame, a call of the model's OpenVINO graph (keep-ratio input, random weights calibrated
    on the frames) returning the decoder's arguments; and the mask threshold."""
    spec = get_spec(model)
    keep_ratio = spec.input_format.keep_ratio  # RF-DETR-Seg has its square stretch only
    mode = ResizeMode.KEEP_RATIO if keep_ratio else ResizeMode.STRETCH
    calibration = random_weights_calibration(spec, images, None, keep_ratio=keep_ratio)
    loaded = create_model(model, "random", seed=0, progress=False, **calibration)
    runtime = get_runtime("openvino", loaded, mode=mode, device="cpu", threads=threads, precision="fp32")
    predictor = Predictor(loaded, mode, None, runtime)

    def call(tensor, meta) -> tuple:
        raw = runtime(tensor, meta.img_shape)
        return raw.boxes.numpy(), raw.scores.numpy(), raw.labels.numpy(), raw.masks.float().numpy(), meta

    inputs = [predictor.prepare(image) for image in images]
    return [partial(call, t, m) for t, m in inputs], loaded.model.detection_config.mask_thr_binary


def bundle_calls(folder: Path, images: list[np.ndarray], threads: int) -> tuple[list[Callable[[], tuple]], float]:
    """The same from a deployment bundle (what the rig runs: its input, its weights)."""
    from maskbench.deploy.model import load

    model = load(folder, threads)

    def call(feeds, meta) -> tuple:
        return (*model.engine(feeds), meta)

    inputs = [model.prepare(image) for image in images]
    return [partial(call, f, m) for f, m in inputs], model.manifest.mask_threshold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rtmdet-ins-s")
    parser.add_argument("--bundle", type=Path, help="a deployment bundle's graph and weights instead of --model's")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the frames (pairs: rounds x frames)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    images = [frame.image for frame in load_frames(None, ["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT"])]
    if args.bundle:
        calls, threshold = bundle_calls(args.bundle, images, args.threads)
        family = get_family(json.loads((args.bundle / "manifest.json").read_text())["family"])
    else:
        calls, threshold = model_calls(args.model, images, args.threads)
        family = get_spec(args.model).family
    work_tree, committed = locate(family.decode), decoder_at(args.rev, family.decode)

    def decode(decoder, call):
        outputs = call()
        t0 = time.perf_counter()
        dets = decoder(*(np.asarray(o) for o in outputs[:4]), outputs[4], threshold)
        return time.perf_counter() - t0, dets

    for call in calls:
        if not np.array_equal(decode(committed, call)[1].masks, decode(work_tree, call)[1].masks):
            print(f"the work tree's masks differ from {args.rev}'s", file=sys.stderr)
            return 1
    times: dict[object, list[float]] = {committed: [], work_tree: []}
    for round_ in range(args.rounds):
        for call in calls:
            for decoder in (committed, work_tree) if round_ % 2 == 0 else (work_tree, committed):
                seconds, dets = decode(decoder, call)
                times[decoder].append(seconds)
                del dets  # as the benchmark does (a pooled mask array, before windows, went back to its pool)
    before, after = times[committed], times[work_tree]
    ratio = ratio_interval(after, before, paired=True)
    print(f"{args.bundle or args.model}, {len(before)} pairs, each after an OpenVINO call ({args.threads} threads): "
          f"{args.rev} {statistics.mean(before) * 1e3:.2f} ms (median {statistics.median(before) * 1e3:.2f}), "
          f"work tree {statistics.mean(after) * 1e3:.2f} ms (median {statistics.median(after) * 1e3:.2f}); "
          f"work tree / {args.rev} {ratio.value:.3f} [{ratio.low:.3f}, {ratio.high:.3f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
