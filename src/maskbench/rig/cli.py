"""``maskbench rig``: replay camera streams in real time through a deployment bundle, given with
``--from-bundle`` or built once from ``--model/--runtime/--precision`` and cached (the replay itself:
:mod:`.command`, which the robot's ``python -m maskbench.deploy BUNDLE --rig`` runs too).
Registered by :mod:`maskbench.cli.main` through :func:`add_parser`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import args as cli_args
from ..utils.errors import ImageError, MaskbenchError
from .command import add_replay_options, check_options, open_streams, run_replay

if TYPE_CHECKING:
    import numpy as np  # the help and the parser import no numpy (tests/test_cli_args.py)


def add_parser(sub) -> None:
    rig = sub.add_parser("rig", help="replay camera streams in real time: can this computer keep up with its cameras?")
    add_replay_options(rig)
    rig.add_argument("--from-bundle", type=Path, default=None, metavar="DIR",
                     help="a deployment bundle (the folder maskbench export --bundle wrote) to run instead of --model")
    cli_args.add_model_args(rig, default="r50")
    cli_args.add_weights_args(rig)
    cli_args.add_runtime_args(rig, default="openvino", note="the bundle's graph runtime: openvino or onnxruntime")
    cli_args.add_precision_args(rig)
    cli_args.add_resize_args(rig)
    rig.add_argument("--wait", action="store_true", help=cli_args.WAIT_HELP)
    rig.set_defaults(run=run, one_writer=True)  # the --out folder is locked while it runs (cli/main.py)


def run(args) -> int:
    from .configs import ConfigKind

    configs = check_options(args)
    streams = open_streams(args)  # refused sources stop here, before any model work
    if args.from_bundle:
        return run_replay(args, streams, args.from_bundle)
    # batch: a second bundle, its graph a static batch of the source's cameras
    batch = [cached_bundle(args, streams, len(streams.cameras))] if any(c.kind is ConfigKind.BATCH for c in configs) \
        else []
    single = [cached_bundle(args, streams)] if any(c.kind is not ConfigKind.BATCH for c in configs) else []
    return run_replay(args, streams, (single + batch)[0], batch[0] if batch else None)


# ----------------------------------------------------------------------------- the model
def first_frame_of_each_camera(streams) -> list[np.ndarray]:
    """The first frame of each of the streams' cameras that decodes within one pass, in arrival
    order (calibration takes the first eight): random weights calibrated on one camera's frame
    alone do a trained model's work on that frame only (on the others their masks scatter over
    the frame: RTMDet-Ins-s decoded in 39.6 ms against 4.2). One pass: a cycling source never ends."""
    images: dict[str, np.ndarray] = {}
    for frame in streams.frames():
        if frame.stamp_ns >= streams.loop_period_ns:
            break
        if frame.camera not in images:
            try:
                images[frame.camera] = frame.decode()
            except ImageError:  # a corrupt frame (FrameDecodeError is one)
                continue  # that camera's next frame, then
        if len(images) == len(streams.cameras):
            break
    if not images:
        raise MaskbenchError(f"{streams.origin}: no frame decodes; check the source")
    return list(images.values())


def cached_bundle(args, streams, batch: int = 1) -> Path:
    """The bundle for ``--model/--runtime/--precision``, built once per model, runtime,
    precision, size, frame shape and static batch under the cache (``$MASKBENCH_CACHE``)."""
    import shutil

    from PIL import Image

    from ..cli.args import resize_mode
    from ..distributed.shipping import ModelChoice, build_choice_bundle, require_graph_runtime
    from ..utils.files import cache_dir

    try:
        require_graph_runtime(args.runtime)
    except MaskbenchError:
        raise MaskbenchError(f"maskbench rig runs a deployment bundle: --runtime openvino or onnxruntime, not "
                             f"{args.runtime}") from None
    cameras = first_frame_of_each_camera(streams)
    image = cameras[0]
    mode = resize_mode(args)
    choice = ModelChoice(args.model, args.weights, args.runtime, args.precision, mode, args.input_size, args.seed)
    threads = args.threads or os.cpu_count() or 1
    key = json.dumps({**choice.key(), "shape": list(image.shape), "threads": threads,
                      "calibration": f"first frame of {len(cameras)} cameras",
                      **({"batch": batch} if batch > 1 else {})}, sort_keys=True)
    folder = cache_dir("rig-bundles") / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / "manifest.json").is_file():
        return folder
    frame_file = folder.with_suffix(".frame.png")
    frame_file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(frame_file)
    staging = folder.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed build
    build_choice_bundle(staging, choice, [str(frame_file)], threads, batch, calibration_images=cameras)
    staging.rename(folder)
    print(f"bundle: {folder} ({args.model}, {args.runtime}, {args.precision}"
          f"{f', a static batch of {batch}' if batch > 1 else ''})")
    return folder
