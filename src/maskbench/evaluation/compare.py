"""Accuracy lost (or not) by a conversion: the AP of one evaluation minus another's.

Both evaluations must score the same images of the same annotation file with the same model
and preprocessing; only the runtime or precision should differ, so that the difference is
what the conversion costs.
"""

from __future__ import annotations

from .coco_eval import IOU_TYPES, STAT_NAMES, CocoMetrics


def ap_difference(reference: CocoMetrics, other: CocoMetrics) -> dict:
    """``other - reference`` for every COCOeval summary number, per IoU type ("box", "mask").

    Returns ``{"box": {"AP": delta, ...}, "mask": {...}, "same_images": bool}``; an IoU type
    missing from either side is left out, and a number that is -1 on either side (no ground
    truth in that range) gives None. Deltas are in COCOeval's units (0..1), not AP points.
    """
    difference: dict = {"same_images": reference.num_images == other.num_images}
    for key in IOU_TYPES:
        ref, oth = getattr(reference, key), getattr(other, key)
        if ref is None or oth is None:
            continue
        difference[key] = {
            name: None if ref.stats[name] < 0 or oth.stats[name] < 0 else oth.stats[name] - ref.stats[name]
            for name in STAT_NAMES
        }
    return difference


def difference_markdown(reference: CocoMetrics, other: CocoMetrics, reference_label: str, other_label: str) -> str:
    """A Markdown table: AP, AP50, AP75 and AR100 of both sides and their difference, in points."""
    difference = ap_difference(reference, other)
    lines = [f"| metric | {reference_label} | {other_label} | difference (points) |", "|---|---|---|---|"]
    for key in IOU_TYPES:
        if key not in difference:
            continue
        for name in ("AP", "AP50", "AP75", "AR100"):
            delta = difference[key][name]
            lines.append(f"| {key} {name} | {_points(getattr(reference, key).stats[name])} | "
                         f"{_points(getattr(other, key).stats[name])} | "
                         f"{'n/a' if delta is None else f'{100 * delta:+.2f}'} |")
    if not difference["same_images"]:
        lines.append("")
        lines.append(f"Warning: the two sides scored different numbers of images ({reference.num_images} vs "
                     f"{other.num_images}: an image failed on one side), so the difference is not the "
                     "conversion's alone.")
    return "\n".join(lines)


def _points(value: float) -> str:
    return "n/a" if value < 0 else f"{100 * value:.2f}"
