"""Two models' detections on the same frames, next to each other (the study's ConvNeXt-T vs
ResNet-101 picture), drawn from the detections files the benchmark saved.

The pair is chosen by alias (or zoo name); when one of them was not run or failed, the first
two ok models stand in, and the report says so: a picture never silently shows other models
than asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from maskbench.data.images import load_image
from maskbench.report.detections_file import load_detections_file
from maskbench.report.overlay import draw_overlay, save_png, side_by_side
from maskbench.report.pareto import point_label
from maskbench.results.records import BenchmarkRecord
from maskbench.utils.errors import MaskbenchError
from maskbench.utils.names import DEFAULT_PAIR  # the command line reads it from there, without numpy

DRAW_THRESHOLD = 0.3


@dataclass
class OverlayResult:
    pair: tuple[BenchmarkRecord, BenchmarkRecord] | None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fallbacks and skipped frames, for the report


def _drawable(records: Sequence[BenchmarkRecord]) -> list[BenchmarkRecord]:
    """Ok records with saved detections, one per model (its first runtime)."""
    seen, chosen = set(), []
    for record in records:
        if record.ok and record.detections_file and record.model not in seen:
            seen.add(record.model)
            chosen.append(record)
    return chosen


def choose_pair(
    records: Sequence[BenchmarkRecord], pair: tuple[str, str] | None = DEFAULT_PAIR
) -> tuple[tuple[BenchmarkRecord, BenchmarkRecord] | None, list[str]]:
    """The two records to compare and notes on any fallback. ``pair`` names models by alias
    or zoo name; missing ones are replaced by the first ok models (in record order)."""
    candidates = _drawable(records)
    notes: list[str] = []
    if len(candidates) < 2:
        return None, [f"side-by-side overlays skipped: {len(candidates)} model(s) with saved detections, 2 needed"]
    if pair is None:
        return (candidates[0], candidates[1]), notes
    found = [next((r for r in candidates if name in (r.alias, r.model)), None) for name in pair]
    if all(found) and found[0] is not found[1]:
        return (cast(BenchmarkRecord, found[0]), cast(BenchmarkRecord, found[1])), notes
    missing = [name for name, record in zip(pair, found) if record is None]
    chosen = (candidates[0], candidates[1])
    notes.append(f"side-by-side overlays: {', '.join(missing) or 'the pair'} not among the ok models with "
                 f"detections; showing {chosen[0].alias or chosen[0].model} vs {chosen[1].alias or chosen[1].model}")
    return chosen, notes


def write_side_by_side(
    records: Sequence[BenchmarkRecord],
    results_dir: Path,
    out_dir: Path,
    pair: tuple[str, str] | None = DEFAULT_PAIR,
    max_frames: int = 6,
) -> OverlayResult:
    """One PNG per frame shared by the pair, into ``out_dir``: left model, right model."""
    chosen, notes = choose_pair(records, pair)
    result = OverlayResult(chosen, notes=notes)
    if chosen is None:
        return result
    try:
        left_frames, right_frames = (load_detections_file(results_dir / cast(str, r.detections_file))
                                     for r in chosen)  # _drawable: both have one
    except MaskbenchError as err:
        result.notes.append(f"side-by-side overlays skipped: {err}")
        return result
    right_by_path = {frame.path: frame for frame in right_frames}
    shared = [(frame, right_by_path[frame.path]) for frame in left_frames if frame.path in right_by_path]
    if not shared:
        result.notes.append("side-by-side overlays skipped: the two models ran on different frames")
    for index, (left, right) in enumerate(shared[:max_frames]):
        try:
            image = load_image(_resolve(left.path, results_dir))
        except MaskbenchError as err:
            result.notes.append(f"overlay of frame {left.path} skipped: {err}")
            continue
        if image.shape[:2] != (left.height, left.width):
            result.notes.append(f"overlay of frame {left.path} skipped: the image is now {image.shape[1]}x"
                                f"{image.shape[0]}, the detections were made on {left.width}x{left.height}")
            continue
        panels = [draw_overlay(image, frame.detections, score_threshold=DRAW_THRESHOLD) for frame in (left, right)]
        titles = [_title(record, frame) for record, frame in zip(chosen, (left, right))]
        name = f"{index:02d}_{Path(left.path).stem}.png"
        result.files.append(save_png(out_dir / name, side_by_side(panels[0], panels[1], titles[0], titles[1])))
    if len(shared) > max_frames:
        result.notes.append(f"side-by-side overlays: first {max_frames} of {len(shared)} frames shown")
    return result


def _title(record: BenchmarkRecord, frame) -> str:
    shown = len(frame.detections.above(DRAW_THRESHOLD))
    camera = f" {frame.camera}" if frame.camera else ""
    return f"{record.backbone or record.alias} ({point_label(record)}){camera}: {shown} detections >= {DRAW_THRESHOLD}"


def _resolve(path: str, results_dir: Path) -> Path:
    """Absolute paths as they are; relative ones from the results folder, else the cwd."""
    candidate = Path(path)
    if candidate.is_absolute() or not (results_dir / candidate).exists():
        return candidate
    return results_dir / candidate
