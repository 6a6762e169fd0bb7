"""The 80-image COCO val2017 subset shipped in the package: the default evaluation data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from maskbench.utils.errors import MaskbenchError


def embedded_coco() -> tuple[Path, Path]:
    """(annotation file, image folder) of the embedded COCO example (see its NOTICE.md).

    Found through importlib.resources so it works from an installed wheel, not just a checkout.
    """
    root = Path(str(resources.files("maskbench").joinpath("assets", "coco_tiny80")))
    annotations, images = root / "annotations" / "instances_val2017.json", root / "val2017"
    if not (annotations.is_file() and images.is_dir()):
        raise MaskbenchError(f"{root}: the embedded COCO example is missing; reinstall maskbench")
    return annotations, images
