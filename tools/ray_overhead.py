"""--engine ray against plain predict on this machine: the engine's overhead (1 actor x all
threads vs predict with as many threads) and how 1 actor x 2 threads compares with 2 actors x 1
thread. Frames: the embedded nuScenes frames, repeated (symlinks) to --frames.

    PYTHONPATH=src .venv/bin/python tools/ray_overhead.py --model r50 --input-size 1344x800 --frames 18

Local: predict's per-frame work (decode, model, RLE; no overlays) timed after one warm-up frame.
Ray: frames / pipeline seconds (first frame submitted to last result: includes starting the
actors and loading the bundle); the steady rate (frames over the span from the first frame's
start to the last frame's end on the actors: Ray's scheduling, gaps and transfers included, the
actors' start not), compared with local; and the actors' busy rate (frames / busy seconds,
summed over actors).
Run it on a quiet machine; it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from maskbench.cli.args import image_size
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.distributed import ModelChoice, RayOptions, predict_on_ray
from maskbench.utils.names import ResizeMode


def frames_folder(count: int, root: Path) -> Path:
    refs = find_images(embedded_nuscenes())
    folder = root / "frames"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:05d}_{refs[i % len(refs)].path.name}").symlink_to(refs[i % len(refs)].path)
    return folder


def local_rate(choice: ModelChoice, folder: Path, threads: int) -> float:
    from maskbench.data.images import load_image
    from maskbench.predict.predictor import _predict_one, load_predictor
    from maskbench.runtimes.registry import get_runtime

    refs = find_images(folder)
    predictor = load_predictor(choice.model, choice.weights, choice.mode, choice.size, load_image(refs[0].path))
    predictor.runtime = get_runtime(choice.runtime, predictor.loaded, mode=choice.mode, threads=threads,
                                    precision=choice.precision)
    _predict_one(predictor, refs[0], 1)  # warm-up: compiles the graph
    started = time.perf_counter()
    for image_id, ref in enumerate(refs, 1):
        _predict_one(predictor, ref, image_id)
    return len(refs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="r50")
    parser.add_argument("--input-size", type=image_size, default=(1344, 800))
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--frames", type=int, default=18)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    choice = ModelChoice(args.model, runtime=args.runtime, mode=ResizeMode.STRETCH, size=args.input_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = frames_folder(args.frames, Path(tmp))
        local = local_rate(choice, folder, args.cores)
        rows.append(f"| predict (local) | 1 x {args.cores} | - | {local:.3f} | - | 100 % |")
        for actors, threads in ((1, args.cores), (args.cores, 1)):
            summary = predict_on_ray(choice, folder, Path(tmp) / f"ray-{actors}x{threads}",
                                     options=RayOptions(actors=actors, threads_per_actor=threads, progress=False))
            busy = sum(s.frames / s.busy_s for s in summary.actors.values() if s.busy_s)
            rate, steady = summary.frames_per_s or 0.0, summary.steady_frames_per_s or 0.0
            rows.append(f"| --engine ray | {actors} x {threads} | {rate:.3f} | {steady:.3f} | {busy:.3f} | "
                        f"{100 * steady / local:.0f} % |")
    print(f"{args.model} {args.input_size[0]}x{args.input_size[1]} {args.runtime}, {args.frames} frames, "
          f"{args.cores} cores\n")
    print("| engine | actors x threads | frames/s (whole pipeline) | steady frames/s | actors' busy frames/s | "
          "steady, of local |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
