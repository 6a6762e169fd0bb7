"""int8 against fp32 on OpenVINO and ONNX Runtime, at the study's 1344x800, on one frame:
latency (best of --repeats, network only) and agreement with fp32 eager PyTorch.

    .venv/bin/python tools/int8_probe.py                      # r50, CAM_FRONT, 2 threads
    .venv/bin/python tools/int8_probe.py --models r50,r101 --repeats 5

Random weights are calibrated on the probed frame (as check-conversion does); int8 is
calibrated on the embedded frames (all six cameras, the runtime's default) unless
--calibration-images says otherwise. "quantize s" is the first construction's export +
quantization + compile time (0 when the artifacts were cached). Detections matched and mean
mask IoU against eager fp32 say little about int8 with random weights: such a network is chaotic
and amplifies any rounding about 100x (see docs/precision.md). The FPN columns compare the four
``fpn_convs`` outputs of the compiled graph (fetched as extra outputs by the runtime's own tap,
``tensor_tap``) with eager's: worst cosine and worst relative L2 error over the levels; for
ResNet backbones the relative error is also printed along the backbone (stem, end of each
stage): the growth of one layer's rounding.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import get_runtime
from maskbench.runtimes.cpu_int8 import int8_instructions
from maskbench.utils.machine import package_versions
from maskbench.verify.conversion_check import check_conversion
from maskbench.verify.features import compare_features

PAIRS = (("openvino", "fp32"), ("openvino", "int8"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))
COLUMNS = ("model", "runtime", "precision", "best ms", "vs fp32", "FPN cosine", "FPN rel. err", "matched",
           "close", "mean mask IoU", "prepare s")
FPN_TENSORS = [f"/neck/fpn_convs.{i}/conv/Conv_output_0" for i in range(4)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="r50", help="comma-separated aliases")
    parser.add_argument("--camera", default="CAM_FRONT", help="the embedded frame probed")
    parser.add_argument("--input-size", default="1344x800", help="stretch size WxH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per runtime (the best is reported)")
    parser.add_argument("--calibration-images", type=Path, default=None,
                        help="int8 calibration frames (default: the embedded nuScenes frames)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="export/int8 cache (default: maskbench's)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.input_size.lower().split("x"))
    torch.set_num_threads(args.threads)
    frame = next(f for f in load_frames() if f.camera == args.camera)
    calibration = None
    if args.calibration_images is not None:
        calibration = [f.image for f in load_frames(args.calibration_images)]

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    descriptions, stage_lines = [], []
    for alias in [m.strip() for m in args.models.split(",") if m.strip()]:
        loaded = calibrated_random_model(alias, [frame], ResizeMode.STRETCH, (width, height))
        tensor, meta = preprocess(frame.image, ResizeMode.STRETCH, (width, height),
                                  loaded.spec.input_format)
        runtimes, prepare_s = [], []
        for name, precision in PAIRS:
            start = time.perf_counter()
            runtime = get_runtime(name, loaded, precision=precision, threads=args.threads, cache_dir=args.cache_dir,
                                  calibration_images=calibration)
            runtime.prepare(tensor, meta.img_shape)
            prepare_s.append(time.perf_counter() - start)
            runtimes.append(runtime)
            print(f"{alias}: {runtime.describe()} ready in {prepare_s[-1]:.0f} s", file=sys.stderr, flush=True)
        rows = check_conversion(loaded, runtimes, [frame], ResizeMode.STRETCH, (width, height), repeats=args.repeats)
        eager_ms = rows[0].eager_ms
        lines.append(f"| {alias} | torch eager | fp32 | {eager_ms:.0f} | | reference | | reference | | | |")
        # References: eager for the FPN outputs; the fp32 graph on ONNX Runtime (= eager to 1e-4)
        # for the backbone tensors eager does not expose.
        fpn, onnxruntime_fp32 = list(FPN_TENSORS), runtimes[PAIRS.index(("onnxruntime", "fp32"))]
        (fp32_path,) = onnxruntime_fp32.onnx_paths.values()
        stages = [n for n in watched_tensors(fp32_path) if n not in fpn]
        reference = dict(zip(stages, onnxruntime_fp32.tensor_tap(stages, "backbone")(tensor, meta.img_shape)))
        with torch.no_grad():
            reference.update(zip(fpn, (f.numpy() for f in loaded.model.extract_features(tensor))))
        fp32_ms = {}
        for row, prepared, runtime in zip(rows, prepare_s, runtimes):
            fp32_ms.setdefault(row.runtime, row.runtime_ms)
            speedup = fp32_ms[row.runtime] / row.runtime_ms
            measured = fidelity(runtime, tensor, meta.img_shape, reference)
            cosine, error = min(measured[n][0] for n in fpn), max(measured[n][1] for n in fpn)
            lines.append(f"| {alias} | {row.runtime} | {row.precision} | {row.runtime_ms:.0f} | {speedup:.2f}x | "
                         f"{cosine:.4f} | {error:.3f} | "
                         f"{row.matched}/{row.reference_count} | {row.close_pairs}/{row.reference_count} | "
                         f"{row.mean_mask_iou:.3f} | {prepared:.0f} |")
            if stages and runtime.precision == "int8":
                steps = ", ".join(f"{_short(n)} {measured[n][1]:.3f}" for n in stages)
                stage_lines.append(f"{alias} {runtime.name} int8, relative error along the backbone: {steps}")
        descriptions += [runtime.describe() for runtime in runtimes if runtime.precision == "int8"]
    versions = package_versions()
    print("\n".join(lines))
    print(f"\n{frame.camera} ({frame.name}) at {width}x{height}, {args.threads} threads, best of {args.repeats}; "
          f"int8 instructions: {', '.join(int8_instructions()) or 'none'}; torch {versions.get('torch')}, onnxruntime "
          f"{versions.get('onnxruntime') or versions.get('onnxruntime-gpu')}, openvino {versions.get('openvino')}, "
          f"nncf {_version('nncf')}")
    print("\n".join(sorted(set(descriptions)) + stage_lines))
    return 0


def watched_tensors(onnx_path) -> list[str]:
    """The stem's and each ResNet stage's last ReLU output (ResNet-family backbones), then the
    four FPN outputs."""
    import onnx

    relus = [n for n in onnx.load(str(onnx_path), load_external_data=False).graph.node
             if n.op_type == "Relu" and n.name.startswith("/backbone/")]
    stages = [relus[0].output[0]] if relus and relus[0].name == "/backbone/relu/Relu" else []
    for index in range(1, 5):
        last = [n for n in relus if n.name.startswith(f"/backbone/layer{index}/")][-1:]
        stages += [n.output[0] for n in last]
    return stages + FPN_TENSORS


def fidelity(runtime, images: torch.Tensor, img_shape: tuple[int, int],
             reference: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """tensor name -> (cosine, relative L2 error) of the runtime's values (its own tap: the file
    it compiles, with these tensors as extra outputs) against ``reference``."""
    names = list(reference)
    values = runtime.tensor_tap(names, "probed")(images, img_shape)
    return dict(zip(names, compare_features([reference[name] for name in names], values)))


def _short(tensor: str) -> str:
    return "stem" if tensor.startswith("/backbone/relu/") else tensor.split("/")[2]


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    sys.exit(main())
