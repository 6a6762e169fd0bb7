"""Synthetic benchmark records, frames and detections files for the report tests: no model runs.

Records are filled from the zoo as the worker fills them (backbone, schedule, published AP,
parameters), with latencies made from chosen per-call timings, so tests can compare the
report's numbers with the records' own.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from maskbench.pipeline.coco_results import detections_to_coco
from maskbench.pipeline.detections import Detections
from maskbench.results.records import OK, BenchmarkJob, BenchmarkRecord, append_record
from maskbench.results.stats import LatencyStats
from maskbench.zoo import get_spec

FRAME_W, FRAME_H = 64, 48


def latency(mean_ms: float, spread: float = 0.1) -> dict:
    """Stats of three calls whose mean is ``mean_ms``."""
    return LatencyStats.from_seconds([mean_ms * (1 - spread) / 1000, mean_ms / 1000,
                                      mean_ms * (1 + spread) / 1000]).to_dict()


def make_record(alias: str, runtime: str = "onnxruntime", *, mean_ms: float = 500.0, status: str = OK,
                precision: str = "fp32", weights_kind: str = "random", **fields) -> BenchmarkRecord:
    """An ok (or failed, with ``status``/``error``) record of a zoo model; ``fields`` override."""
    spec = get_spec(alias)
    job = BenchmarkJob(model=spec.name, runtime=runtime, precision=precision, weights=weights_kind, warmup=2, repeat=3)
    record = BenchmarkRecord(
        key=job.key(), job=job.to_dict(), status=status, model=spec.name, alias=spec.alias,
        backbone=spec.backbone, schedule=spec.weights.schedule, recipe=spec.weights.recipe, in_study=spec.in_study,
        zoo_box_ap=spec.weights.box_ap, zoo_mask_ap=spec.weights.mask_ap, params=spec.num_params,
        weights="random (seed 0, calibrated, untrained)" if weights_kind == "random" else "official COCO checkpoint",
        weights_kind=weights_kind, runtime=runtime, precision=precision, device="cpu", threads=2, mode="stretch",
        input_hw=[800, 1344], images=3,
        environment={"cpu": "Synthetic CPU", "usable_cpus": 2, "python": "3.11.2",
                     "packages": {"torch": "2.14.1", "onnxruntime": "1.99.0"}},
    )
    if status == OK:
        record.setup_s, record.prepare_s, record.first_call_ms = 1.5, 12.25, mean_ms * 3
        record.end_to_end = latency(mean_ms)
        record.preprocess = latency(mean_ms * 0.1)
        record.inference = latency(mean_ms * 0.8)
        record.postprocess = latency(mean_ms * 0.1)
        record.decode = latency(9.0)
        record.steady_rss_mb, record.peak_rss_mb, record.artifact_mb = 1800.0 + mean_ms, 2500.0 + mean_ms, 180.0
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def square_detections(boxes, scores, labels, height: int = FRAME_H, width: int = FRAME_W) -> Detections:
    masks = np.zeros((len(boxes), height, width), bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        mask[y1:y2, x1:x2] = True
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(labels, np.int64), masks)


def write_frames(folder: Path, count: int = 2) -> list[Path]:
    """Small coloured PNG frames (cv2 writes BGR: the colours are just distinct)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        image[:] = (40 + 60 * index, 120, 200 - 50 * index)
        cv2.rectangle(image, (5, 5), (30, 30), (255, 255, 255), -1)
        path = folder / f"frame_{index}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def write_detections_file(results_dir: Path, record: BenchmarkRecord, frames: list[Path], shift: int = 0) -> None:
    """The worker's detections file for ``record`` (two boxes per frame), linked from it."""
    payload = {"frames": []}
    for index, frame in enumerate(frames):
        dets = square_detections([(4 + shift, 4, 30 + shift, 30), (34, 10, 60, 44)], [0.9, 0.6], [2, 0])
        payload["frames"].append({"path": str(frame), "camera": "CAM_FRONT" if index == 0 else None,
                                  "width": FRAME_W, "height": FRAME_H, "results": detections_to_coco(dets, index + 1)})
    relative = Path("detections") / f"{BenchmarkJob.from_dict(record.job).slug()}.json"
    (results_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (results_dir / relative).write_text(json.dumps(payload))
    record.detections_file = str(relative)


def study_set() -> list[BenchmarkRecord]:
    """Five study models on one runtime (different speeds), one with stages, one crash."""
    return [
        make_record("r101", mean_ms=400.0),
        make_record("x101", mean_ms=450.0),
        make_record("s101", mean_ms=900.0),
        make_record("swin-t", mean_ms=700.0),
        make_record("convnext-t", mean_ms=480.0, stages={"rpn": latency(50.0), "backbone+fpn": latency(200.0)}),
        make_record("r50", "openvino", status="crashed", error="worker died (signal 9: killed, out of memory?)\nmore"),
    ]


def make_results_dir(tmp: Path, records: list[BenchmarkRecord]) -> Path:
    """A benchmark output folder under ``tmp``: frames, detections files of the ok records
    (linked from them), results.jsonl."""
    frames = write_frames(tmp / "frames")
    folder = tmp / "bench"
    for shift, record in enumerate(records):
        if record.ok:
            write_detections_file(folder, record, frames, shift=shift)
        append_record(folder / "results.jsonl", record)
    return folder
