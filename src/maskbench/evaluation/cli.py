"""``maskbench evaluate`` (added to the main parser by :func:`add_commands`).

Two forms: run a model (optionally on a runtime, optionally a second runtime to compare) over
a COCO dataset, or score an existing results file (``--predictions``). Both write metrics.json
and metrics.md into ``--out`` and print the summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..cli import args as cli_args
from ..utils.errors import MaskbenchError
from ..utils.names import BACKENDS
from ..zoo.weights_kind import are_random

if TYPE_CHECKING:  # numpy-free at run time: the parser is built without it
    from .coco_eval import CocoMetrics


def add_commands(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="COCO box/mask AP of a model (on a runtime) or of a results file")
    cli_args.add_model_args(evaluate, default="convnext-t")
    cli_args.add_weights_args(evaluate)
    evaluate.add_argument("--predictions", type=Path, default=None,
                          help="score this COCO results file (e.g. predict's results.json) instead of running a model")
    evaluate.add_argument("--coco", type=Path, default=None,
                          help="COCO annotation file (default: the embedded 80-image val2017 example)")
    evaluate.add_argument("--images", type=Path, default=None,
                          help="folder the annotation file's file_names are in (default: the embedded example's)")
    cli_args.add_resize_args(evaluate)
    evaluate.add_argument("--max-images", type=int, default=None, help="only the first N images (by id)")
    cli_args.add_runtime_args(evaluate, default_text="eager PyTorch on the CPU; with --precision other than fp32: "
                                                     "torch")
    cli_args.add_precision_args(evaluate)
    cli_args.add_threads_args(evaluate)
    cli_args.add_engine_args(evaluate)
    evaluate.add_argument("--backend", choices=BACKENDS, default=None,
                          help="COCOeval implementation (default: faster-coco-eval when installed; same numbers)")
    evaluate.add_argument("--compare-runtime", type=cli_args.runtime_name, default=None, metavar="RUNTIME",
                          help="also evaluate the same model on this runtime (as for --runtime) and report the AP "
                               "difference")
    evaluate.add_argument("--compare-precision", type=cli_args.precision_name, default=None, metavar="PRECISION",
                          help="precision of --compare-runtime (as for --precision; default: --precision)")
    evaluate.add_argument("--compare-with", type=Path, default=None,
                          help="a metrics.json of an earlier evaluation: report this one's AP minus that one's")
    cli_args.add_output_args(evaluate, default=Path("out/evaluate"), one_writer=True)
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=evaluate_command)


def evaluate_command(args) -> int:
    from ..distributed.cli import check_engine
    from .coco_eval import CocoMetrics

    annotations, images = _dataset_paths(args)
    on_ray = check_engine(args)
    if on_ray and (args.predictions is not None or args.compare_runtime is not None):
        raise MaskbenchError("--engine ray runs one model on one runtime: drop --predictions (it scores a file) "
                             "and --compare-runtime (evaluate the other runtime in a second run, then --compare-with)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.predictions is not None:
        metrics = _score_predictions(args, annotations)
    elif on_ray:
        metrics = _run_on_ray(args, annotations, cast(Path, images))
    else:
        metrics = _run_models(args, annotations, cast(Path, images))  # given: _dataset_paths checked
    if args.compare_with is not None:
        _report_difference(CocoMetrics.from_json(args.compare_with), metrics, str(args.compare_with), "this run",
                           args.out)
    return 0


def _dataset_paths(args) -> tuple[Path, Path | None]:
    if args.coco is None and args.images is None:
        from .embedded import embedded_coco

        return embedded_coco()
    if args.coco is None:
        raise MaskbenchError("--images needs --coco (the annotation file of those images)")
    if args.images is None and args.predictions is None:
        raise MaskbenchError("--coco needs --images (the folder its file_names are in) to run a model")
    return args.coco, args.images


def _score_predictions(args, annotations: Path) -> CocoMetrics:
    from .coco_eval import load_annotations, score_results
    from .predictions import load_predictions

    dataset = load_annotations(annotations)
    loaded = load_predictions(args.predictions, dataset, annotations_name=Path(annotations).name)
    metrics = score_results(loaded.entries, dataset, image_ids=loaded.image_ids, backend=args.backend)
    metrics.notes[:0] = loaded.notes
    context = {"predictions": args.predictions, "annotations": annotations}
    _write_and_print(args.out, metrics, context, random_weights=_made_with_random_weights(args.predictions))
    return metrics


def _run_models(args, annotations: Path, images: Path) -> CocoMetrics:
    from .run import evaluate_predictor

    predictor = _load_predictor(args, annotations, images)
    predictor.runtime = _runtime(args.runtime, args.precision, predictor, args)
    result = evaluate_predictor(predictor, annotations, images, max_images=args.max_images,
                                progress=not args.no_progress, backend=args.backend)
    _write_evaluation(args.out, result, annotations, images)
    if args.compare_runtime is not None:
        from ..predict.predictor import Predictor

        precision = args.compare_precision or args.precision
        other = Predictor(predictor.loaded, predictor.mode, predictor.input_size)
        other.runtime = _runtime(args.compare_runtime, precision, other, args)
        print(f"\ncomparison: the same model on {args.compare_runtime} ({precision})")
        other_result = evaluate_predictor(other, annotations, images, max_images=args.max_images,
                                          progress=not args.no_progress, backend=args.backend)
        _write_evaluation(args.out / "compare", other_result, annotations, images)
        _report_difference(result.metrics, other_result.metrics, _label(args.runtime, args.precision),
                           _label(args.compare_runtime, precision), args.out)
    return result.metrics


def _run_on_ray(args, annotations: Path, images: Path) -> CocoMetrics:
    """The model's predictions made on Ray (``OUT/ray``), scored and written as here."""
    from ..distributed.cli import model_to_ship, ray_options
    from ..distributed.ray_evaluate import evaluate_on_ray

    result, summary = evaluate_on_ray(model_to_ship(args, cli_args.resize_mode(args)), annotations, images, args.out,
                                      max_images=args.max_images, backend=args.backend, options=ray_options(args))
    for line in summary.lines():
        print(line)
    _write_evaluation(args.out, result, annotations, images)
    return result.metrics


def _load_predictor(args, annotations: Path, images: Path):
    """The model, random weights calibrated on the dataset's first readable image (as predict does)."""
    from ..data.images import load_image
    from ..predict.predictor import load_predictor
    from ..runtimes.registry import require_runtime
    from ..utils.errors import ImageError
    from .coco_eval import load_annotations

    # A missing package or an unsupported precision is reported before the model is loaded.
    require_runtime(args.runtime or "torch", args.precision)
    if args.compare_runtime is not None:
        require_runtime(args.compare_runtime, args.compare_precision or args.precision)
    calibration = None
    for entry in sorted(load_annotations(annotations)["images"], key=lambda image: image["id"]):  # eval order
        try:
            calibration = load_image(images / entry["file_name"])
            break
        except ImageError:
            continue
    mode = cli_args.resize_mode(args)
    return load_predictor(args.model, args.weights, mode, args.input_size, calibration, args.seed)


def _runtime(name: str | None, precision: str, predictor, args):
    """The runtime object; None (eager on the CPU) when no runtime is named and precision is
    fp32. A precision other than fp32 without a runtime means the ``torch`` runtime, as in predict."""
    if name is None and precision == "fp32":
        return None
    from ..runtimes.registry import get_runtime

    return get_runtime(name or "torch", predictor.loaded, mode=predictor.mode, threads=args.threads,
                       precision=precision)


def _write_evaluation(out: Path, result, annotations: Path, images: Path) -> None:
    from ..pipeline.coco_results import write_coco_results
    from ..utils.files import space_estimate

    # A full disk: the results' JSON, plus ~64 KB of metrics.
    with space_estimate(out, lambda: (len(json.dumps(result.results)) + (64 << 10),
                                      f"the results of {result.images_scored} image(s)")):
        write_coco_results(out / "results.json", result.results)
        context = {**result.info, "annotations": annotations, "images": images,
                   "images scored": f"{result.images_scored} of {result.images_total}"}
        failures = [{"file_name": f.file_name, "error": f.error} for f in result.failures]
        summary = result.to_dict()
        summary["info"] = {**summary["info"], "annotations": str(annotations), "images": str(images)}
        _write_and_print(out, result.metrics, context, result.random_weights, failures, summary["timing"],
                         extra=summary)
    for failure in result.failures[:5]:
        print(f"not evaluated: {failure.error}")
    if len(result.failures) > 5:
        print(f"... and {len(result.failures) - 5} more image(s) not evaluated (see {out / 'metrics.md'})")


def _write_and_print(out: Path, metrics: CocoMetrics, context: dict, random_weights: bool,
                     failures=(), timing=None, extra: dict | None = None) -> None:
    from ..pipeline.coco_results import write_json_atomic
    from ..utils.files import atomic_open
    from .coco_eval import default_backend
    from .tables import RANDOM_WEIGHTS_WARNING, metrics_markdown, summary_table

    context = {key: str(value) for key, value in context.items()}
    payload = extra or {"info": context, "random_weights": random_weights, "metrics": metrics.to_dict()}
    if random_weights:
        payload = {"warning": RANDOM_WEIGHTS_WARNING, **payload}
    write_json_atomic(out / "metrics.json", payload, indent=1)
    with atomic_open(out / "metrics.md") as file:
        file.write(metrics_markdown(metrics, context, random_weights, failures, timing))
    if random_weights:
        print(RANDOM_WEIGHTS_WARNING)
    print(" | ".join(f"{key}: {value}" for key, value in context.items()))
    print(f"scored with {metrics.backend} (default here: {default_backend()}): {metrics.num_images} image(s), "
          f"{metrics.num_results} detection(s)")
    for note in metrics.notes:
        print(f"note: {note}")
    print(summary_table(metrics))
    print(f"written: {out / 'metrics.json'}, {out / 'metrics.md'}")


def _report_difference(reference: CocoMetrics, other: CocoMetrics, reference_label: str, other_label: str,
                       out: Path) -> None:
    from ..pipeline.coco_results import write_json_atomic
    from ..utils.files import atomic_open
    from .compare import ap_difference, difference_markdown

    table = difference_markdown(reference, other, reference_label, other_label)
    difference = {"reference": reference_label, "other": other_label, "other_minus_reference":
                  ap_difference(reference, other)}
    write_json_atomic(out / "difference.json", difference, indent=1)
    with atomic_open(out / "difference.md") as file:
        file.write(f"# AP difference: {other_label} minus {reference_label}\n\n{table}\n")
    print(f"\nAP difference, {other_label} minus {reference_label}:\n{table}\nwritten: {out / 'difference.md'}")


def _label(runtime: str | None, precision: str) -> str:
    return f"{runtime or 'torch eager'} {precision}"


def _made_with_random_weights(results_path: Path) -> bool:
    """True when predict's images.json beside the results says the weights were random."""
    images_file = Path(results_path).parent / "images.json"
    try:
        info = json.loads(images_file.read_text(encoding="utf-8")).get("info", {})
    except (OSError, ValueError, AttributeError):
        return False
    return are_random(info.get("weights"))
