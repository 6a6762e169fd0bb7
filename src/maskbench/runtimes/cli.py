"""``maskbench export``, ``maskbench check-conversion`` and ``maskbench runtimes`` (added to the
main parser by :func:`add_commands`, so ``maskbench/cli.py`` only gains two lines)."""

from __future__ import annotations

from pathlib import Path

from ..preprocess import ResizeMode

PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # = base.PRECISIONS, without importing torch to parse
EXPORT_RUNTIMES = ("onnx", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt")


def add_commands(sub, size_type, cameras_type) -> None:
    export = sub.add_parser("export", help="export a model to ONNX (and OpenVINO IR, TensorRT engine) for a runtime")
    export.add_argument("--model", required=True, help="zoo name or alias (see `maskbench zoo`)")
    export.add_argument("--weights", default="random", help="'official', 'random' (calibrated) or a .pth path")
    export.add_argument("--runtime", choices=EXPORT_RUNTIMES, default="onnx",
                        help="onnx: the ONNX file; onnxruntime(-cuda): also run it there once; openvino: also "
                             "convert it to OpenVINO IR (.xml/.bin) and run it once; tensorrt: also build the "
                             "engine (cached next to the ONNX file) and run it once")
    export.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="what the runtime computes in (the ONNX file itself is always fp32); "
                             "see `maskbench runtimes`")
    export.add_argument("--input-size", type=size_type, default=None,
                        help="stretch size WxH (default 1344x800) or keep-ratio limits (default 1333x800)")
    export.add_argument("--keep-ratio", action="store_true",
                        help="keep-ratio graph: img_shape is a second input; the input is static at the padded "
                             "size of the first image (1344x768 for 1600x900 frames)")
    export.add_argument("--images", type=Path, default=None,
                        help="frames that calibrate random weights and size a keep-ratio graph "
                             "(default: the embedded nuScenes frames)")
    export.add_argument("--calibration-images", type=Path, default=None,
                        help="int8: image file or folder the quantization measures activation ranges on "
                             "(default: the embedded nuScenes frames)")
    export.add_argument("--out", type=Path, required=True, help="folder the files are written to")
    export.add_argument("--seed", type=int, default=0, help="seed of random weights")
    export.set_defaults(run=export_command)

    check = sub.add_parser("check-conversion", help="compare a runtime with eager PyTorch on the same frames")
    check.add_argument("--model", required=True, help="zoo name or alias")
    check.add_argument("--runtime", required=True, help="runtime(s), comma-separated, e.g. onnxruntime,openvino")
    check.add_argument("--weights", default="random",
                       help="'official', 'random' (calibrated on the checked frames) or a .pth path")
    check.add_argument("--images", type=Path, default=None, help="image file or folder (default: embedded frames)")
    check.add_argument("--cameras", type=cameras_type, default=None, help="nuScenes cameras (default: all)")
    check.add_argument("--input-size", type=size_type, default=None, help="as for predict")
    check.add_argument("--keep-ratio", action="store_true", help="keep-ratio resize (img_shape as graph input)")
    check.add_argument("--threads", type=int, default=None, help="runtime threads (default: torch's)")
    check.add_argument("--repeats", type=int, default=1, help="timed runs per frame (the best is reported)")
    check.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="precision of the runtime(s) checked (the reference is eager fp32); fp16/bf16/int8 "
                            "are judged with looser tolerances")
    check.add_argument("--calibration-images", type=Path, default=None,
                       help="int8: image file or folder the quantization measures activation ranges on "
                            "(default: the embedded nuScenes frames)")
    check.add_argument("--out", type=Path, default=None,
                       help="JSON file (default: out/check-conversion/MODEL_RUNTIMES.json)")
    check.set_defaults(run=check_conversion_command)

    listing = sub.add_parser("runtimes", help="list the runtimes: available here?, precisions, how to install")
    listing.set_defaults(run=runtimes_command)


def _mode(args) -> ResizeMode:
    return ResizeMode.KEEP_RATIO if args.keep_ratio else ResizeMode.STRETCH


def _calibration_images(args):
    """``--calibration-images`` as RGB frames (``None``: the runtime's default, the embedded
    frames); read only for int8, the one precision that uses them."""
    if args.precision != "int8" or args.calibration_images is None:
        return None
    from ..data.frames import load_frames

    return [frame.image for frame in load_frames(args.calibration_images)]


def export_command(args) -> int:
    from ..data.frames import load_frames
    from ..errors import MaskbenchError
    from ..export.onnx_export import ExportTarget, export_onnx
    from ..packages import require_package
    from ..predict import load_predictor
    from .registry import get_runtime, require_runtime

    mode = _mode(args)
    if args.runtime == "onnx" and args.precision != "fp32":
        raise MaskbenchError(f"the ONNX file is always fp32; --precision {args.precision} applies to a runtime: "
                             "add --runtime openvino (bf16, int8), onnxruntime (int8) or tensorrt (fp16)")
    if args.runtime != "onnx":  # unknown precision, missing package or GPU: refused before any model work
        require_runtime(args.runtime, args.precision)
    frames = load_frames(args.images)[:1]
    # The same model `maskbench predict` builds (random weights: calibrated on the first frame).
    predictor = load_predictor(args.model, args.weights, mode, args.input_size, frames[0].image, args.seed)
    loaded = predictor.loaded
    tensor, meta = predictor.prepare(frames[0].image)
    target = ExportTarget.for_input(tensor, meta.img_shape, mode)
    path = export_onnx(loaded, target, cache_dir=args.out)
    height, width = target.input_hw
    print(f"ONNX ({mode.value}, input 1x3x{height}x{width}"
          f"{'' if target.img_shape is not None else ' + img_shape [h, w]'}): {path}")
    if args.runtime == "openvino":
        ov = require_package("openvino", "openvino")
        xml = path.with_suffix(".xml")
        ov.save_model(ov.Core().read_model(str(path)), str(xml), compress_to_fp16=False)
        print(f"OpenVINO IR (fp32): {xml} (+ {xml.with_suffix('.bin').name})")
    if args.runtime != "onnx":
        runtime = get_runtime(args.runtime, loaded, mode=mode, cache_dir=args.out, precision=args.precision,
                              calibration_images=_calibration_images(args))
        runtime.prepare(tensor, meta.img_shape)
        for line in runtime.artifact_lines():  # engines, int8 artifacts
            print(line)
        raw = runtime(tensor, meta.img_shape)
        print(f"{runtime.describe()}: ran on {frames[0].name}, {raw.scores.shape[0]} detections")
    print(f"weights: {loaded.weights}")
    return 0


def check_conversion_command(args) -> int:
    from ..verify.conversion_check import run_check
    from ..verify.results_file import environment_info, write_json
    from ..verify.tables import format_table
    from ..zoo import get_spec

    names = [n.strip() for n in args.runtime.split(",") if n.strip()]
    rows = run_check(args.model, names, weights=args.weights, images=args.images, cameras=args.cameras,
                     mode=_mode(args), size=args.input_size, threads=args.threads, repeats=args.repeats,
                     precision=args.precision, calibration_images=_calibration_images(args))
    print(format_table(rows))
    suffix = "" if args.precision == "fp32" else f"_{args.precision}"
    out = args.out or Path("out/check-conversion") / f"{get_spec(args.model).alias}_{'_'.join(names)}{suffix}.json"
    info = {**environment_info(args.threads), "model": args.model, "weights": args.weights,
            "mode": _mode(args).value, "input_size": args.input_size, "precision": args.precision}
    print(f"written: {write_json(rows, out, info)}")
    disagreeing = [r for r in rows if not r.agrees]
    for row in disagreeing:
        print(row.verdict())
    if args.precision != "fp32" and args.weights == "random":
        print(f"note: random weights amplify rounding about 100x (see runtimes/conversion_check.py), so "
              f"{args.precision} changes most of their detections: detection-level agreement means something only "
              f"with --weights official; judge random weights by the FPN cosine and relative error columns")
    if disagreeing:
        print(f"{len(disagreeing)} of {len(rows)} frame(s) disagree (see the table)")
    return 0 if not disagreeing else 1


def runtimes_command(args) -> int:
    from .base import UNTESTED_TENSORRT
    from .registry import RUNTIMES, runtime_problem

    problems = {name: runtime_problem(name) for name in RUNTIMES}
    rows = [("runtime", "here", "precisions (devices)", "install")]
    rows += [(name, "yes" if problems[name] is None else "no", info.precisions_text(), info.install)
             for name, info in RUNTIMES.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for name, problem in problems.items():
        if problem:
            print(f"{name}: not available here: {problem}")
    for name, info in RUNTIMES.items():
        if not info.tested_here:
            print(f"{name}: {UNTESTED_TENSORRT}")
    return 0
