"""``maskbench export``, ``maskbench check-conversion`` and ``maskbench runtimes`` (added to the
main parser by :func:`add_commands`, so ``maskbench/cli.py`` only gains two lines)."""

from __future__ import annotations

from pathlib import Path

from ..cli import args as cli_args
from ..cli.keys import add_sign_args, check_sign_args
from ..utils.names import PRECISIONS  # noqa: F401 (PRECISIONS: = base.PRECISIONS, read without torch)


def add_commands(sub) -> None:
    export = sub.add_parser("export", help="export a model to ONNX (and OpenVINO IR, TensorRT engine) for a runtime")
    cli_args.add_model_args(export, required=True)
    cli_args.add_weights_args(export)
    cli_args.add_export_runtime_args(export)
    cli_args.add_precision_args(export, note="the ONNX file itself is always fp32", calibration=True)
    cli_args.add_input_args(export, images_note="the first frame calibrates random weights and sizes a keep-ratio "
                                                "graph")
    cli_args.add_resize_args(export)
    cli_args.add_output_args(export, required=True, one_writer=True)
    export.add_argument("--bundle", type=Path, default=None, metavar="DIR",
                        help="also write a torch-free deployment bundle there: the runtime's artifact + manifest.json "
                             "(run it with maskbench.deploy, docs/deploy.md)")
    export.add_argument("--batch", type=int, default=1, metavar="N",
                        help="with --bundle: a static-batch graph of N images per call (maskbench rig --config "
                             "batch: the cameras' simultaneous frames); fp32 or bf16 (default: 1)")
    add_sign_args(export)
    export.set_defaults(run=export_command)

    check = sub.add_parser("check-conversion", help="compare a runtime with eager PyTorch on the same frames")
    cli_args.add_model_args(check, required=True)
    cli_args.add_runtime_args(check, multiple=True, required=True, alias="--runtime")
    cli_args.add_precision_args(check, note="the reference is eager fp32; fp16/bf16/int8 are judged with looser "
                                            "tolerances", calibration=True)
    cli_args.add_weights_args(check)
    cli_args.add_input_args(check)
    cli_args.add_resize_args(check)
    cli_args.add_threads_args(check)
    check.add_argument("--repeats", type=int, default=1, help="timed runs per frame (the best is reported)")
    cli_args.add_output_args(check, kind="JSON file", default_text="out/check-conversion/MODEL_RUNTIMES.json")
    check.set_defaults(run=check_conversion_command)

    listing = sub.add_parser("runtimes", help="list the runtimes: available here?, precisions, how to install")
    listing.set_defaults(run=runtimes_command)


def _calibration_images(args):
    """``--calibration-images`` as RGB frames (``None``: the runtime's default, the embedded
    frames); read only for int8, the one precision that uses them."""
    if args.precision != "int8" or args.calibration_images is None:
        return None
    from ..data.frames import load_frames

    return [frame.image for frame in load_frames(args.calibration_images)]


def export_command(args) -> int:
    from ..data.frames import load_frames
    from ..export.onnx_export import ExportTarget, export_cache_dir, export_onnx
    from ..predict.predictor import load_predictor
    from ..utils.errors import MaskbenchError
    from ..utils.files import space_estimate
    from ..utils.packages import require_package
    from .registry import get_runtime, require_runtime

    mode = cli_args.resize_mode(args)
    if args.runtime == "onnx" and args.precision != "fp32":
        raise MaskbenchError(f"the ONNX file is always fp32; --precision {args.precision} applies to a runtime: "
                             "add --runtime openvino (bf16, int8), onnxruntime (int8) or tensorrt (fp16)")
    # An unknown or unsupported precision, a missing package or GPU: refused before any model work.
    if args.runtime != "onnx":
        require_runtime(args.runtime, args.precision)
    else:
        require_package("onnx")
    if getattr(args, "bundle", None) is not None and args.runtime == "onnx":
        raise MaskbenchError("--bundle needs the runtime that will run it: add --runtime onnxruntime or openvino")
    check_sign_args(args)
    check_batch_args(args)
    frames = load_frames(args.images, args.cameras)[:1]
    # The same model `maskbench predict` builds (random weights: calibrated on the first frame).
    predictor = load_predictor(args.model, args.weights, mode, args.input_size, frames[0].image, args.seed)
    loaded = predictor.loaded
    tensor, meta = predictor.prepare(frames[0].image)
    target = ExportTarget.for_input(tensor, meta.img_shape, mode)
    # A full disk: the fp32 graph is ~4 bytes per parameter, a runtime's artifact (IR, engine) as much again.
    needed = 4 * sum(p.numel() for p in loaded.model.parameters()) * (1 if args.runtime == "onnx" else 2)
    with space_estimate(args.out or export_cache_dir(), lambda: (needed, "the exported files")):
        path = export_onnx(loaded, target, cache_dir=args.out)
        height, width = target.input_hw
        print(f"ONNX ({mode.value}, input 1x3x{height}x{width}"
              f"{'' if target.img_shape is not None else ' + img_shape [h, w]'}): {path}")
        if args.runtime == "openvino":
            ov = require_package("openvino", "openvino")
            xml = save_openvino_ir(ov, path)
            print(f"OpenVINO IR (fp32): {xml} (+ {xml.with_suffix('.bin').name})")
        if args.runtime != "onnx":
            runtime = get_runtime(args.runtime, loaded, mode=mode, cache_dir=args.out, precision=args.precision,
                                  calibration_images=_calibration_images(args))
            runtime.prepare(tensor, meta.img_shape)
            for line in runtime.artifact_lines():  # engines, int8 artifacts
                print(line)
            raw = runtime(tensor, meta.img_shape)
            print(f"{runtime.describe()}: ran on {frames[0].name}, {raw.scores.shape[0]} detections")
            if getattr(args, "bundle", None) is not None:
                from ..export.bundle import build_bundle
                from .exported import bundle_runtime

                batch = tensor.repeat(args.batch, 1, 1, 1)  # the graph's static batch (1: the frame itself)
                bundle = build_bundle(args.bundle, bundle_runtime(runtime), batch, meta.img_shape, mode,
                                      args.input_size, sign_key=args.sign)
                print(f"bundle: {bundle}{' (signed)' if args.sign else ''}"
                      f"{f' (a static batch of {args.batch})' if args.batch > 1 else ''}")
    print(f"weights: {loaded.weights}")
    return 0


def check_batch_args(args) -> None:
    """``--batch N``: one line, before any model work, for what cannot be built."""
    from ..utils.errors import MaskbenchError
    from ..zoo import get_spec

    if args.batch == 1:
        return
    if args.batch < 1:
        raise MaskbenchError(f"--batch {args.batch}: give 1 or more images per call")
    if args.bundle is None:
        raise MaskbenchError("--batch shapes a deployment bundle's graph: add --bundle DIR")
    family = get_spec(args.model).family
    if not family.static_batch:
        raise MaskbenchError(f"--batch: the {family.display_name} export graph takes one image; export without --batch")


def save_openvino_ir(ov, onnx_path: Path) -> Path:
    """The ONNX file as OpenVINO IR beside it (``.xml`` + ``.bin``, fp32 weights), saved in a
    temporary folder and renamed, so a crash or a full disk leaves no half-written file."""
    import os
    import tempfile

    from ..utils.files import silent_write_failure, writing_in

    xml = onnx_path.with_suffix(".xml")
    with writing_in(onnx_path.parent), tempfile.TemporaryDirectory(dir=onnx_path.parent) as tmp:
        try:
            ov.save_model(ov.Core().read_model(str(onnx_path)), str(Path(tmp) / "model.xml"), compress_to_fp16=False)
        except RuntimeError as err:  # OpenVINO's failed write has no errno: the folder says why
            failure = silent_write_failure(onnx_path.parent, onnx_path.stat().st_size, "the OpenVINO IR")
            if failure is None:
                raise
            raise failure from err
        os.replace(Path(tmp) / "model.bin", xml.with_suffix(".bin"))
        os.replace(Path(tmp) / "model.xml", xml)
    return xml


def check_conversion_command(args) -> int:
    from ..verify.conversion_check import run_check
    from ..verify.results_file import environment_info, write_json
    from ..verify.tables import format_table
    from ..zoo import get_spec

    names = args.runtimes
    mode = cli_args.resize_mode(args)
    rows = run_check(args.model, names, weights=args.weights, images=args.images, cameras=args.cameras,
                     mode=mode, input_size=args.input_size, threads=args.threads, repeats=args.repeats, seed=args.seed,
                     precision=args.precision, calibration_images=_calibration_images(args))
    print(format_table(rows))
    suffix = "" if args.precision == "fp32" else f"_{args.precision}"
    out = args.out or Path("out/check-conversion") / f"{get_spec(args.model).alias}_{'_'.join(names)}{suffix}.json"
    info = {**environment_info(args.threads), "model": args.model, "weights": args.weights,
            "mode": mode.value, "input_size": args.input_size, "precision": args.precision}
    print(f"written: {write_json(rows, out, info)}")
    disagreeing = [r for r in rows if not r.agrees]
    for row in disagreeing:
        print(row.verdict())
    if args.precision != "fp32" and args.weights == "random":
        print(f"note: random weights amplify rounding about 100x (see verify/conversion_check.py), so "
              f"{args.precision} changes most of their detections: detection-level agreement means something only "
              f"with --weights official; judge random weights by the feature cosine and relative error columns")
    if disagreeing:
        print(f"{len(disagreeing)} of {len(rows)} frame(s) disagree (see the table)")
    return 0 if not disagreeing else 1


def runtimes_command(args) -> int:
    from .registry import RUNTIMES, UNTESTED_TENSORRT, runtime_problem

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
