"""``--engine ray`` of ``maskbench predict`` and ``evaluate``: the flags read into
:class:`.ray_predict.RayOptions` and the model to ship; the Ray-only flags are refused with the
local engine rather than ignored."""

from __future__ import annotations

from pathlib import Path

from ..utils.errors import MaskbenchError
from .ray_predict import RayOptions
from .shipping import ModelChoice, require_graph_runtime

RAY_FLAGS = {"address": "--address", "actors": "--actors", "threads_per_actor": "--threads-per-actor",
             "batch_size": "--batch-size", "from_bundle": "--from-bundle"}


def check_engine(args) -> bool:
    """True for ``--engine ray``; with the local engine, a Ray-only flag is one line."""
    if args.engine == "ray":
        if args.threads is not None:
            raise MaskbenchError("--threads is the local engine's; with --engine ray give --threads-per-actor")
        return True
    given = [flag for name, flag in RAY_FLAGS.items() if getattr(args, name, None) is not None]
    if given:
        raise MaskbenchError(f"{', '.join(given)} apply to --engine ray; add --engine ray or drop them")
    return False


def ray_options(args) -> RayOptions:
    for name in ("actors", "threads_per_actor", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise MaskbenchError(f"{RAY_FLAGS[name]} must be 1 or more, got {value}")
    return RayOptions(address=args.address, actors=args.actors, threads_per_actor=args.threads_per_actor or 1,
                      batch_size=args.batch_size or 4, progress=not getattr(args, "no_progress", False))


def model_to_ship(args, mode) -> ModelChoice | Path:
    """``--from-bundle DIR`` as it is, else what the driver builds from the model flags."""
    if args.from_bundle is not None:
        return Path(args.from_bundle)
    runtime = require_graph_runtime(args.runtime)
    return ModelChoice(args.model, args.weights, runtime, args.precision, mode, args.input_size, args.seed)


def predict_command(args, mode) -> int:
    from ..data.sources import embedded_nuscenes
    from .ray_predict import predict_on_ray

    summary = predict_on_ray(model_to_ship(args, mode), args.images or embedded_nuscenes(), args.out,
                             cameras=args.cameras, options=ray_options(args))
    for line in summary.lines():
        print(line)
    print(f"results: {args.out / 'results.json'} (COCO format), images: {args.out / 'images.json'}, "
          f"summary: {args.out / 'summary.json'}")
    return 0 if summary.predicted + summary.resumed else 1
