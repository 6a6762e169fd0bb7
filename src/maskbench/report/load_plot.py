"""Latency against offered load, one plot per model: where the knee is. For each runtime x
precision x configuration (x machine) the p99 (solid) and p50 (dashed) latency against the
frames per second offered by all cameras together, from a capacity search's trials or from
several single runs at different loads; loads that held are filled markers, those that did not
are hollow; the deadline is a horizontal line. Below the knee latency is flat (the service
time); past it queues fill and frames are dropped or late."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from maskbench.results.machines import machine_label, machines_of
from maskbench.results.rig_records import LoadPoint, RigRecord
from maskbench.utils.files import atomic_path

DEADLINE_COLOUR = "#d62728"


def series(records: Sequence[RigRecord]) -> dict[str, list[LoadPoint]]:
    """Label -> the points of one runtime x precision x configuration (x machine when several),
    in offered-load order, every record's curve merged (a later point at the same load wins)."""
    several = len(machines_of(records, lambda r: r.machine)) > 1
    merged: dict[str, dict[float, LoadPoint]] = {}
    for record in records:
        label = f"{record.runtime}/{record.precision} {record.config}"
        if several:
            label += f" ({machine_label(record.machine)})"
        points = merged.setdefault(label, {})
        for point in record.curve:
            points[round(point.offered_hz, 6)] = point
    return {label: [points[k] for k in sorted(points)] for label, points in merged.items()}


def load_figure(records: Sequence[RigRecord], title: str):
    """A matplotlib Figure (no pyplot) of one model's records."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    for index, (label, points) in enumerate(sorted(series(records).items())):
        colour = colours[index % len(colours)]
        curves = (("p99", "-", [p.p99_ms for p in points]), ("p50", "--", [p.p50_ms for p in points]))
        for name, style, values in curves:
            xs = [p.offered_hz for p, v in zip(points, values) if v is not None]
            ys = [v for v in values if v is not None]
            if not xs:
                continue
            axes.plot(xs, ys, style, color=colour, linewidth=1.4, label=f"{label} {name}")
            held = [p.holds for p, v in zip(points, values) if v is not None]
            axes.scatter(xs, ys, s=28, zorder=3, color=[colour if h else "white" for h in held], edgecolors=colour)
    for deadline in sorted({r.deadline_ms for r in records if r.deadline_ms is not None}):
        axes.axhline(deadline, color=DEADLINE_COLOUR, linestyle=":", linewidth=1.2, label=f"deadline {deadline:g} ms")
    axes.set_xlabel("offered load, all cameras (frames/s)")
    axes.set_ylabel("latency, arrival to detections (ms)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.set_ylim(bottom=0)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left")
    return figure


def write_load_plots(records: Sequence[RigRecord], out_dir: Path) -> list[Path]:
    """One PNG per model with at least one point: ``rig-load-<model>.png``."""
    by_model: dict[str, list[RigRecord]] = {}
    for record in records:
        if record.curve:
            by_model.setdefault(record.alias or record.model, []).append(record)
    files = []
    for model, model_records in sorted(by_model.items()):
        path = Path(out_dir) / f"rig-load-{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}.png"
        figure = load_figure(model_records, f"{model}: latency vs offered load")
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png")
        files.append(path)
    return files
