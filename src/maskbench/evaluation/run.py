"""Run a Predictor over a COCO dataset and score it: :func:`evaluate_predictor`.

Images are taken from the annotation file (``images[].file_name`` under the image folder),
in id order. An image that cannot be read, or whose size disagrees with the annotation file,
or on which the model fails, is reported in :attr:`EvalResult.failures` and left out of the
scoring, so one bad file costs that image only; every other image is scored, including those
without any annotation (there, every detection is a false positive).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from maskbench.data.images import load_image
from maskbench.pipeline.coco_results import detections_to_coco
from maskbench.utils.errors import ImageError, MaskbenchError
from maskbench.utils.run_info import run_info
from maskbench.zoo.weights_kind import are_random

from .categories import CategoryMap, to_dataset_ids
from .coco_eval import CocoMetrics, load_annotations, score_results


@dataclass(frozen=True)
class ImageFailure:
    image_id: int
    file_name: str
    error: str


@dataclass
class EvalTiming:
    """Seconds spent: ``predict`` (read + model + post-processing, all images), ``score``
    (COCOeval) and ``total`` (including loading the annotation file)."""

    predict: float = 0.0
    score: float = 0.0
    total: float = 0.0
    ms_per_image: float | None = None


@dataclass
class EvalResult:
    """What :func:`evaluate_predictor` returns; :meth:`to_dict` is what metrics.json holds.

    ``results``: the COCO results list (the dataset's image and category ids) that was scored;
    ``images_total``: images considered (after ``max_images``); ``images_scored``: those that
    ran; ``info``: model, weights, runtime, preprocessing; ``random_weights``: True when the
    model is untrained, i.e. its AP measures nothing.
    """

    metrics: CocoMetrics
    results: list[dict]
    failures: list[ImageFailure]
    images_total: int
    images_scored: int
    timing: EvalTiming
    info: dict = field(default_factory=dict)
    random_weights: bool = False

    def to_dict(self) -> dict:
        """JSON-ready dict of everything but the (large) results list."""
        return {"info": self.info, "random_weights": self.random_weights, "images_total": self.images_total,
                "images_scored": self.images_scored, "metrics": self.metrics.to_dict(),
                "failures": [asdict(failure) for failure in self.failures], "timing": asdict(self.timing)}


def evaluate_predictor(predictor, annotations: Path, images: Path, *, max_images: int | None = None,
                       progress: bool = True, backend: str | None = None) -> EvalResult:
    """Box and mask AP of ``predictor`` on the COCO dataset ``annotations`` + ``images``.

    ``predictor``: a :class:`maskbench.predict.predictor.Predictor` (with or without a runtime) or any
    callable RGB uint8 HxWx3 -> :class:`~maskbench.pipeline.detections.Detections`. ``images``: the
    folder the annotation file's ``file_name`` s are relative to. ``max_images``: only the
    first N images by id. ``progress``: show a tqdm bar. ``backend``: "faster-coco-eval" or
    "pycocotools" (default: the faster one installed). Raises MaskbenchError when the
    annotation file is unusable or no image at all could be evaluated.
    """
    started = time.perf_counter()
    dataset = load_annotations(Path(annotations))
    category_map = CategoryMap.from_categories(dataset["categories"])
    entries = sorted(dataset["images"], key=lambda image: image["id"])[:max_images]
    results: list[dict] = []
    failures: list[ImageFailure] = []
    scored_ids: list[int] = []
    predict_started = time.perf_counter()
    for entry in tqdm(entries, desc="evaluate", unit="img", disable=not progress):
        outcome = _predict_image(predictor, entry, Path(images), category_map)
        if isinstance(outcome, ImageFailure):
            failures.append(outcome)
        else:
            results.extend(outcome)
            scored_ids.append(entry["id"])
    predict_seconds = time.perf_counter() - predict_started
    if not scored_ids:
        first = failures[0].error if failures else "the annotation file lists no images"
        raise MaskbenchError(f"no image could be evaluated ({len(failures)} failed); first: {first}")
    metrics = score_results(results, dataset, image_ids=scored_ids, backend=backend)
    timing = EvalTiming(predict_seconds, metrics.seconds, time.perf_counter() - started,
                        1000 * predict_seconds / len(scored_ids))
    return EvalResult(metrics, results, failures, len(entries), len(scored_ids), timing,
                      describe_predictor(predictor), is_random(predictor))


def _predict_image(predictor, entry: dict, images: Path, category_map: CategoryMap) -> list[dict] | ImageFailure:
    """The image's results in the dataset's ids, or why it could not be evaluated."""
    path = images / entry["file_name"]
    try:
        image = load_image(path)
    except ImageError as err:
        return ImageFailure(entry["id"], entry["file_name"], str(err))
    height, width = image.shape[:2]
    if (entry.get("width"), entry.get("height")) != (width, height):
        return ImageFailure(entry["id"], entry["file_name"],
                            f"{path}: image is {width}x{height} but the annotation file says "
                            f"{entry.get('width')}x{entry.get('height')}; wrong image folder or file")
    try:
        detections = predictor(image)
    except (RuntimeError, ValueError) as err:  # keep going with the other images
        return ImageFailure(entry["id"], entry["file_name"], f"{path}: model failed on this image ({err})")
    coco_entries, _ = to_dataset_ids(detections_to_coco(detections, entry["id"]), category_map)
    return coco_entries


def is_random(predictor) -> bool:
    loaded = getattr(predictor, "loaded", None)
    return loaded is not None and are_random(loaded.weights)


def describe_predictor(predictor) -> dict:
    """Model, weights, runtime and preprocessing of a maskbench Predictor (empty for others)."""
    loaded = getattr(predictor, "loaded", None)
    if loaded is None:
        return {}
    return run_info(loaded.spec.name, loaded.weights, predictor.mode, predictor.input_size,
                    predictor.runtime.describe() if predictor.runtime is not None else None)
