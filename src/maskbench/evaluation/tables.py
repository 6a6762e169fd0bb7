"""Human-readable forms of an evaluation: the metrics.md file and the console summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .coco_eval import IOU_TYPES, CocoMetrics

RANDOM_WEIGHTS_WARNING = (
    "WARNING: untrained random weights. This AP is that of a randomly initialised model and is "
    "meaningless as accuracy; it only shows that the pipeline runs. Use --weights official or a "
    "trained checkpoint to measure accuracy."
)
SUMMARY_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


def summary_table(metrics: CocoMetrics) -> str:
    """Box and mask rows of AP, AP50, AP75, APs/m/l and AR100, in points (0..100)."""
    lines = [f"|      | {' | '.join(f'{name:>5}' for name in SUMMARY_COLUMNS)} |",
             f"|------|{'|'.join('-------' for _ in SUMMARY_COLUMNS)}|"]
    for key in IOU_TYPES:
        summary = getattr(metrics, key)
        if summary is not None:
            lines.append(f"| {key:<4} | {' | '.join(_points(summary.stats[name]) for name in SUMMARY_COLUMNS)} |")
    return "\n".join(lines)


def per_class_table(metrics: CocoMetrics) -> str:
    keys = [key for key in IOU_TYPES if getattr(metrics, key) is not None]
    if not keys:
        return ""
    names = list(getattr(metrics, keys[0]).per_class)
    lines = [f"| class | {' | '.join(f'{key} AP' for key in keys)} |", f"|---|{'---|' * len(keys)}"]
    absent = 0
    for name in names:
        values = [getattr(metrics, key).per_class.get(name) for key in keys]
        if all(value is None for value in values):
            absent += 1
            continue
        lines.append(f"| {name} | {' | '.join(_points(v) for v in values)} |")
    if absent:
        lines += ["", f"{absent} class(es) without ground truth in the scored images are left out."]
    return "\n".join(lines)


def metrics_markdown(metrics: CocoMetrics, context: Mapping[str, object], random_weights: bool,
                     failures: Sequence[Mapping] = (), timing: Mapping[str, object] | None = None) -> str:
    """The metrics.md file: what was scored, the summary, per-class AP, failures and timing."""
    lines = ["# COCO evaluation", ""]
    if random_weights:
        lines += [f"**{RANDOM_WEIGHTS_WARNING}**", ""]
    lines += [f"- {key}: {value}" for key, value in context.items()]
    lines += [f"- scoring: {metrics.backend}, {metrics.num_images} image(s), {metrics.num_results} detection(s)",
              *[f"- note: {note}" for note in metrics.notes],
              "", "AP in points (COCOeval x 100; n/a: no ground truth in that range).", "",
              summary_table(metrics), "", "## AP per class (IoU .50:.95, all areas)", "", per_class_table(metrics)]
    if failures:
        lines += ["", f"## Images not evaluated ({len(failures)})", ""]
        lines += [f"- {failure['file_name']}: {failure['error']}" for failure in failures]
    if timing:
        lines += ["", "## Timing (s)", "", *[f"- {key}: {_number(value)}" for key, value in timing.items()]]
    return "\n".join(lines) + "\n"


def _points(value: float | None) -> str:
    return "  n/a" if value is None or value < 0 else f"{100 * value:5.1f}"


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
