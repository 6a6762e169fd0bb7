"""The embedded 80-image COCO set and its ground-truth masks, loaded once per session."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from maskbench.evaluation import embedded_coco


@pytest.fixture(scope="session")
def tiny_coco() -> tuple[Path, Path]:
    """(annotation file, image folder) of the embedded set."""
    return embedded_coco()


@pytest.fixture(scope="session")
def tiny_dataset(tiny_coco) -> dict:
    return json.loads(tiny_coco[0].read_text())


@pytest.fixture(scope="session")
def gt_masks(tiny_coco) -> dict[int, np.ndarray]:
    """Each non-crowd annotation's mask (bool HxW), rendered once by pycocotools."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools' decode under numpy 2, harmless
        ground_truth = COCO(str(tiny_coco[0]))  # (and it prints as it loads)
        return {ann["id"]: ground_truth.annToMask(ann).astype(bool)
                for ann in ground_truth.dataset["annotations"] if not ann["iscrowd"]}
