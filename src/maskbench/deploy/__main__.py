"""``python -m maskbench.deploy DIR --images PATH --out OUT``: predict's ``results.json`` and
``images.json`` from a bundle, without torch. Exit 0: every image predicted; 1: some images
failed (listed in images.json); 2: refused (one line: not a bundle, tampered, wrong version,
missing runtime, unsigned or not signed by a ``--trusted-key``). ``--verify`` checks the bundle
without running it (no runtime needed): exit 0 and one line, or 2 and the refusal.

``python -m maskbench.deploy DIR --rig [SOURCE] [--config ...] --out OUT``: the real-time camera
replay of ``maskbench rig`` (:mod:`maskbench.rig.command`) on the robot, through this bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..utils.errors import ImageError, MaskbenchError, one_line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--rig" in argv:
        return rig_main([a for a in argv if a != "--rig"])
    parser = argparse.ArgumentParser(prog="python -m maskbench.deploy",
                                     description="predict with a bundle, without torch")
    parser.add_argument("bundle", type=Path, help="the folder written by maskbench export --bundle")
    parser.add_argument("--images", type=Path, default=None, help="an image file or a folder of images")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json and images.json")
    parser.add_argument("--threads", type=int, default=None, help="override the bundle's thread count")
    parser.add_argument("--trusted-key", type=Path, action="append", default=None, metavar="PUB",
                        help="accept only a bundle signed by this public key (maskbench keys new); repeatable")
    parser.add_argument("--verify", action="store_true",
                        help="check the bundle (files, manifest, signature) and exit, without running it")
    args = parser.parse_args(argv)
    if not args.verify and (args.images is None or args.out is None):
        parser.error("--images and --out are required (or --verify)")
    try:
        if args.verify:
            from ..pipeline.bundle_seal import verify_bundle

            print(verify_bundle(args.bundle, args.trusted_key).describe(args.bundle))
            return 0
        return predict_folder(args.bundle, args.images, args.out, args.threads, args.trusted_key)
    except MaskbenchError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


def rig_main(argv: list[str]) -> int:
    from ..rig.command import add_replay_options, check_options, open_streams, run_replay

    parser = argparse.ArgumentParser(prog="python -m maskbench.deploy BUNDLE --rig",
                                     description="replay camera streams in real time through a bundle, without torch")
    parser.add_argument("bundle", type=Path, help="the folder written by maskbench export --bundle")
    add_replay_options(parser)
    args = parser.parse_args(argv)
    try:
        check_options(args)
        return run_replay(args, open_streams(args), args.bundle)
    except MaskbenchError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


def predict_folder(bundle: Path, images: Path, out: Path, threads: int | None,
                   trusted_keys: list[Path] | None = None) -> int:
    from ..data.images import load_image
    from ..data.sources import find_images
    from ..pipeline.coco_results import ImageRecord, write_predictions
    from .model import load

    model = load(bundle, threads, trusted_keys)
    refs = find_images(images)
    records: list[ImageRecord] = []
    results: list[dict] = []
    info = model.manifest.run_info(f"{model.manifest.threads} threads, deployed bundle")
    failed = 0
    try:
        for image_id, ref in enumerate(refs, 1):
            try:
                image = load_image(ref.path)
            except ImageError as err:
                records.append(ImageRecord(image_id, str(ref.path), 0, 0, ref.camera, error=str(err)))
                failed += 1
                continue
            detections = model(image)
            records.append(ImageRecord(image_id, str(ref.path), image.shape[1], image.shape[0], ref.camera))
            results.extend(model.coco_results(detections, image_id))
    finally:
        out.mkdir(parents=True, exist_ok=True)
        write_predictions(out, records, results, info)
    print(f"{len(refs) - failed} image(s) predicted: {out}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
