"""``maskbench evaluate --engine ray``: the COCO dataset's images predicted on Ray (into
``OUT/ray``: shards, bundle, predict's files; resumable), then scored by the scorer local
``evaluate`` uses (:func:`~maskbench.evaluation.coco_eval.score_results`, the same category
mapping), so the same frames, weights and runtime give the same metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..evaluation.categories import CategoryMap, to_dataset_ids
from ..evaluation.coco_eval import load_annotations, score_results
from ..evaluation.run import EvalResult, EvalTiming, ImageFailure
from ..pipeline.coco_results import RESULTS_FILE
from ..utils.errors import MaskbenchError
from ..zoo.weights_kind import are_random
from .frames import coco_frames
from .ray_predict import RayOptions, RaySummary, run_frames
from .shards import latest_records
from .shipping import ModelChoice, require_graph_runtime

RAY_FOLDER = "ray"


def evaluate_on_ray(model: ModelChoice | Path, annotations: Path, images: Path, out_dir: Path, *,
                    max_images: int | None = None, backend: str | None = None,
                    options: RayOptions = RayOptions()) -> tuple[EvalResult, RaySummary]:
    """Box and mask AP of ``model`` on ``annotations`` + ``images`` (the first ``max_images`` by
    id), predicted on Ray into ``out_dir/ray``; the result is what local evaluate returns."""
    if isinstance(model, ModelChoice):
        require_graph_runtime(model.runtime)
    started = time.perf_counter()
    dataset = load_annotations(Path(annotations))
    frames = coco_frames(dataset, Path(images), max_images)
    folder = Path(out_dir) / RAY_FOLDER
    summary = run_frames(frames, model, folder, options)
    records = latest_records(folder)
    failures = [ImageFailure(r.image_id, r.file_name, r.error) for _, r in sorted(records.items()) if r.error]
    scored = [image_id for image_id, r in sorted(records.items()) if r.error is None]
    if not scored:
        first = failures[0].error if failures else "the annotation file lists no images"
        raise MaskbenchError(f"no image could be evaluated ({len(failures)} failed); first: {first}")
    predicted = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    entries, _ = to_dataset_ids(predicted, CategoryMap.from_categories(dataset["categories"]))
    metrics = score_results(entries, dataset, image_ids=scored, backend=backend)
    timing = EvalTiming(summary.pipeline_s, metrics.seconds, time.perf_counter() - started,
                        1000 * summary.pipeline_s / max(1, summary.predicted) if summary.predicted else None)
    random_weights = are_random(summary.info.get("weights"))
    result = EvalResult(metrics, entries, failures, len(frames), len(scored), timing, dict(summary.info),
                        random_weights)
    return result, summary
