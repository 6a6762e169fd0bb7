"""Accuracy against latency: which AP a record stands for, the Pareto front, and its plot.

The AP of a record is the measured one when the benchmark evaluated it (``measured_*_ap``),
else the zoo's published number for the official weights. The source travels with the value
so every table, plot and recommendation can say which one it shows.

A record is on the Pareto front when no other record is at least as fast *and* at least as
accurate, and strictly better in one of the two: those are the only sensible choices, every
other record is beaten on both axes by one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from maskbench.results.records import BenchmarkRecord
from maskbench.utils.files import atomic_path
from maskbench.utils.names import METRICS  # the command line reads it from there, without numpy

MEASURED, ZOO = "measured", "zoo"
FRONT_COLOUR = "#d62728"  # also what the screenshot test looks for on the rendered page
OTHER_COLOUR = "#1f77b4"


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got '{metric}'")
    return metric


def metric_value(record: BenchmarkRecord, metric: str = "mask_ap") -> tuple[float | None, str | None]:
    """``(AP, "measured" | "zoo")``, or ``(None, None)`` when the record has neither."""
    check_metric(metric)
    measured = getattr(record, f"measured_{metric}")
    if measured is not None:
        return float(measured), MEASURED
    published = getattr(record, f"zoo_{metric}")
    return (float(published), ZOO) if published is not None else (None, None)


def mean_latency_ms(record: BenchmarkRecord) -> float | None:
    """End-to-end mean per image, the study's latency."""
    stats = record.latency("end_to_end")
    return stats.mean_ms if stats else None


def ranked_latency_ms(record: BenchmarkRecord) -> float:
    """:func:`mean_latency_ms` of a record known to have one (e.g. from :func:`rankable`)."""
    return cast(float, mean_latency_ms(record))


def ranked_ap(record: BenchmarkRecord, metric: str = "mask_ap") -> float:
    """The AP of :func:`metric_value` for a record known to have one (e.g. from :func:`rankable`)."""
    return cast(float, metric_value(record, metric)[0])


def rankable(records: Sequence[BenchmarkRecord], metric: str = "mask_ap") -> list[BenchmarkRecord]:
    """The ok records that have both a latency and an AP, in their original order."""
    return [r for r in records if r.ok and mean_latency_ms(r) is not None and metric_value(r, metric)[0] is not None]


def pareto_front(records: Sequence[BenchmarkRecord], metric: str = "mask_ap") -> list[BenchmarkRecord]:
    """The non-dominated records (latency down, AP up), fastest first. Identical points are
    all kept: neither beats the other."""
    points = [(r, ranked_latency_ms(r), ranked_ap(r, metric)) for r in rankable(records, metric)]

    def dominated(latency: float, ap: float) -> bool:
        return any(
            other_lat <= latency and other_ap >= ap and (other_lat < latency or other_ap > ap)
            for _, other_lat, other_ap in points
        )

    front = [(r, lat, ap) for r, lat, ap in points if not dominated(lat, ap)]
    return [r for r, _, _ in sorted(front, key=lambda item: (item[1], -item[2]))]


def point_label(record: BenchmarkRecord) -> str:
    """``alias runtime/precision``: what a plot or a sentence calls one record."""
    name = record.alias or record.model or record.job.get("model", "?")
    runtime = record.runtime or record.job.get('runtime', '?')
    return f"{name} {runtime}/{record.precision or record.job.get('precision', '?')}"


def ap_sources(records: Sequence[BenchmarkRecord], metric: str) -> set[str]:
    return {source for r in rankable(records, metric) if (source := metric_value(r, metric)[1])}


def pareto_figure(records: Sequence[BenchmarkRecord], metric: str = "mask_ap"):
    """A matplotlib Figure (no pyplot, so no global state): every rankable record a labelled
    point, the front as a step line (the best AP reachable within a latency) over highlighted
    points. The x axis turns logarithmic when latencies span more than 20x (GPU next to CPU)."""
    from matplotlib.figure import Figure

    points = rankable(records, metric)
    front = pareto_front(points, metric)
    on_front = {id(r) for r in front}
    figure = Figure(figsize=(8, 5.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    for record in points:
        latency, ap = ranked_latency_ms(record), ranked_ap(record, metric)
        highlighted = id(record) in on_front
        axes.scatter([latency], [ap], s=60 if highlighted else 36, zorder=3,
                     color=FRONT_COLOUR if highlighted else OTHER_COLOUR,
                     edgecolors="black" if highlighted else "none", linewidths=0.6)
        axes.annotate(point_label(record), (latency, ap), xytext=(5, 4), textcoords="offset points", fontsize=8)
    if front:
        xs = [ranked_latency_ms(r) for r in front]
        ys = [ranked_ap(r, metric) for r in front]
        axes.step(xs, ys, where="post", color=FRONT_COLOUR, linewidth=1.5, zorder=2, label="Pareto front")
        axes.legend(loc="lower right", fontsize=8)
    latencies = [ranked_latency_ms(r) for r in points]
    if latencies and min(latencies) > 0 and max(latencies) / min(latencies) > 20:
        axes.set_xscale("log")
    sources = " / ".join(sorted(ap_sources(points, metric))) or "none"
    axes.set_xlabel("end-to-end latency, mean per image (ms)")
    axes.set_ylabel(f"{METRICS[metric]} ({sources})")
    axes.set_title(f"{METRICS[metric]} vs latency: {len(points)} model x runtime, {len(front)} on the front")
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.15, y=0.12)  # room for the labels of the outermost points
    return figure


def save_figure(figure, png: Path, svg: Path) -> tuple[Path, Path]:
    """Both files atomically (the format is named: the temporary file's name ends in .tmp)."""
    for path, kind in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=kind)
    return png, svg
