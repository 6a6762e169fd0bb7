"""The ``maskbench`` command: thin argument parsing over the library functions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MaskbenchError
from .preprocess import ResizeMode
from .runtimes.cli import PRECISIONS


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1344x800, got '{text}'") from None
    return width, height


def _cameras(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    zoo = sub.add_parser("zoo", help="list the models, or show one")
    zoo.add_argument("name", nargs="?", help="model name or alias")
    zoo.add_argument("--markdown", action="store_true", help="print the table as Markdown")

    predict = sub.add_parser("predict", help="run a model over images; write COCO results and overlays")
    predict.add_argument("--model", default="convnext-t", help="zoo name or alias (see `maskbench zoo`)")
    predict.add_argument("--weights", default="random",
                         help="'official' (download), 'random' (calibrated, for benchmarks) or a .pth path")
    predict.add_argument("--images", type=Path, default=None,
                         help="image file, folder, or nuScenes folder (default: the embedded nuScenes frames)")
    predict.add_argument("--cameras", type=_cameras, default=None,
                         help="nuScenes cameras, e.g. CAM_FRONT,CAM_FRONT_LEFT,CAM_FRONT_RIGHT (default: all)")
    predict.add_argument("--out", type=Path, default=Path("out/predict"))
    predict.add_argument("--keep-ratio", action="store_true",
                         help="MMDetection's keep-ratio resize (1333x800) + pad instead of the static stretch")
    predict.add_argument("--input-size", type=_size, default=None,
                         help="stretch size WxH (default 1344x800) or keep-ratio limits (default 1333x800)")
    predict.add_argument("--draw-threshold", type=float, default=0.3, help="score below which overlays skip")
    predict.add_argument("--no-overlays", action="store_true")
    predict.add_argument("--seed", type=int, default=0, help="seed of random weights")
    predict.add_argument("--runtime", default=None,
                         help="torch, torch-compile, onnxruntime, onnxruntime-cuda, openvino or tensorrt "
                              "(default: eager on the CPU); see `maskbench runtimes`")
    predict.add_argument("--threads", type=int, default=None, help="ONNX Runtime/OpenVINO threads (default: torch's)")
    predict.add_argument("--precision", choices=PRECISIONS, default="fp32",
                         help="what the network computes in, where the runtime supports it (without --runtime: "
                              "the torch runtime); outputs and post-processing stay fp32")

    from .runtimes.cli import add_commands  # export, check-conversion

    add_commands(sub, _size, _cameras)
    from .report.cli import add_commands as add_report_commands  # report, recommend

    add_report_commands(sub)
    from .evaluation.cli import add_commands as add_evaluation_commands  # evaluate

    add_evaluation_commands(sub, _size)
    from .benchmark.cli import add_commands as add_benchmark_commands

    add_benchmark_commands(sub, _size, _cameras)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "zoo":
            return _zoo(args)
        if args.command == "predict":
            return _predict(args)
        if hasattr(args, "run"):  # commands added by add_commands
            return args.run(args)
    except MaskbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1


def _zoo(args) -> int:
    from .zoo import get_spec
    from .zoo_table import describe, markdown_table, text_table

    if args.name:
        print(describe(get_spec(args.name)))
    else:
        print(markdown_table() if args.markdown else text_table())
    return 0


def _predict(args) -> int:
    from .data.sources import embedded_nuscenes
    from .predict import run_predict

    mode = ResizeMode.KEEP_RATIO if args.keep_ratio else ResizeMode.STRETCH
    summary = run_predict(
        args.model, args.weights, args.images or embedded_nuscenes(), args.out, cameras=args.cameras,
        mode=mode, size=args.input_size, overlays=not args.no_overlays, draw_threshold=args.draw_threshold,
        seed=args.seed, runtime=args.runtime, threads=args.threads, precision=args.precision,
    )
    print(f"{summary.processed} image(s) predicted, {len(summary.errors)} skipped; weights: {summary.weights}")
    print(f"results: {summary.out_dir / 'results.json'} (COCO format), images: {summary.out_dir / 'images.json'}")
    return 0 if summary.processed else 1


if __name__ == "__main__":
    sys.exit(main())
