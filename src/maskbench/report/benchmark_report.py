"""The benchmark report: the study's table reproduced from measured records, with everything
a reader needs to trust it, as Markdown, CSV, JSON, a Pareto plot, side-by-side overlays and
one self-contained HTML page.

``write_report`` only reads records (and the detections files they point to), so a report can
be rendered again at any time from ``results.jsonl`` (``maskbench report``) without
measuring anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maskbench.report import export, tables
from maskbench.report.html_page import FIDELITY_HEADING, PAIRS_HEADING, PageContent, render_page
from maskbench.report.pareto import METRICS, ap_sources, pareto_figure, pareto_front, point_label, save_figure
from maskbench.report.rig_section import rig_sections
from maskbench.report.side_by_side import DEFAULT_PAIR, write_side_by_side
from maskbench.results.machines import latest_per_machine
from maskbench.results.records import BenchmarkRecord
from maskbench.results.rig_records import RigRecord
from maskbench.utils.files import atomic_open
from maskbench.zoo.weights_kind import are_random

REPORT_FILES = ("report.md", "report.html", "results.csv", "results.json", "pareto.png", "pareto.svg")
# A report's size before one was written (measured on docs/benchmark-cpu: 3 frames, 3 MB):
# tables and plot ~0.2 MB; each side-by-side frame ~0.7 MB of PNG plus its JPEG in the HTML page.
REPORT_BASE_BYTES = 512 * 1024
REPORT_BYTES_PER_OVERLAY = 1024 * 1024


@dataclass
class ReportFiles:
    markdown: Path
    csv: Path
    json: Path
    pareto_png: Path
    pareto_svg: Path
    html: Path
    overlays: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # overlay fallbacks and skips
    load_plots: list[Path] = field(default_factory=list)  # the rig's, one per model (report/load_plot.py)


def write_report(
    records: Sequence[BenchmarkRecord],
    out_dir: Path,
    *,
    overlay_pair: tuple[str, str] | None = DEFAULT_PAIR,
    results_dir: Path | None = None,
    metric: str = "mask_ap",
    max_overlay_frames: int = 6,
    rig_records: Sequence[RigRecord] = (),
) -> ReportFiles:
    """Write the whole report into ``out_dir``. ``results_dir`` is where the records'
    detections files live (default ``out_dir``, where the benchmark writes both);
    ``overlay_pair`` names the two models drawn side by side (None: the first two ok ones);
    ``rig_records`` add the rig's capacity table and load plots (:mod:`maskbench.report.rig_section`).
    Records of the same job made on different machines are all kept (a machine column tells them apart)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = latest_per_machine(list(records), lambda r: r.key, lambda r: r.environment)
    results_dir = Path(results_dir) if results_dir is not None else out_dir

    figure = pareto_figure(records, metric)
    png, svg = save_figure(figure, out_dir / "pareto.png", out_dir / "pareto.svg")
    overlays = write_side_by_side(records, results_dir, out_dir / "overlays", overlay_pair, max_overlay_frames)

    sections, load_plots = rig_sections(rig_records, out_dir)
    content = PageContent(
        title=_title(records) if records or not rig_records else f"Camera rig report: {len(rig_records)} record(s)",
        notes=tables.setup_notes(records) if records else ["no benchmark record"],
        results=tables.results_table(records),
        results_notes=tables.under_load_notes(records),
        pairs=tables.pairs_table(records),
        timing_notes=tables.timing_notes(records),
        startup=tables.startup_table(records),
        stages=tables.stage_table(records),
        fidelity=tables.fidelity_table(records),
        fidelity_notes=tables.fidelity_notes(records),
        failures=tables.failure_lines(records),
        pareto_png=png,
        pareto_notes=_pareto_notes(records, metric),
        overlays=overlays.files,
        overlay_notes=_overlay_notes(overlays),
        sections=sections,
    )
    markdown = out_dir / "report.md"
    _write_text(markdown, render_markdown(content, out_dir))
    html_path = out_dir / "report.html"
    _write_text(html_path, render_page(content))
    return ReportFiles(
        markdown=markdown, csv=export.write_csv(out_dir / "results.csv", records),
        json=export.write_json(out_dir / "results.json", records), pareto_png=png, pareto_svg=svg,
        html=html_path, overlays=overlays.files, notes=overlays.notes, load_plots=load_plots,
    )


def report_size_estimate(out_dir: Path, frames: int, max_overlay_frames: int = 6) -> int:
    """Bytes the report needs in ``out_dir`` (for a full disk's message): the size of the report
    already there, else an estimate from the number of frames drawn side by side."""
    out_dir = Path(out_dir)
    written = [out_dir / name for name in REPORT_FILES] + sorted((out_dir / "overlays").glob("*.png"))
    sizes = [path.stat().st_size for path in written if path.is_file()]
    if (out_dir / "report.html").is_file():
        return sum(sizes)
    return REPORT_BASE_BYTES + REPORT_BYTES_PER_OVERLAY * min(frames, max_overlay_frames)


def _title(records: Sequence[BenchmarkRecord]) -> str:
    models = {r.model for r in records}
    devices = sorted({r.device for r in records if r.device})
    ok = sum(1 for r in records if r.ok)
    return (f"Instance segmentation benchmark: {len(models)} model(s), {ok} of {len(records)} model x runtime run(s) ok"
            + (f" on {', '.join(devices)}" if devices else ""))


def _pareto_notes(records: Sequence[BenchmarkRecord], metric: str) -> list[str]:
    front = pareto_front(records, metric)
    sources = " and ".join(sorted(ap_sources(records, metric))) or "no"
    return [f"x: end-to-end mean latency per image; y: {METRICS[metric]} ({sources} AP)",
            "Pareto front (nothing else is both faster and more accurate), fastest first: "
            + (", ".join(point_label(r) for r in front) or "empty")]


def _overlay_notes(overlays) -> list[str]:
    notes = list(overlays.notes)
    if overlays.pair:
        left, right = overlays.pair
        notes.insert(0, f"left: {left.backbone} ({point_label(left)}), right: {right.backbone} "
                        f"({point_label(right)}); detections of the last timed pass, score >= 0.3 drawn")
        if any(are_random(r.weights_kind) for r in overlays.pair):
            notes.append(tables.RANDOM_WEIGHTS_WARNING)
    return notes


def render_markdown(content: PageContent, out_dir: Path) -> str:
    def bullets(items: list[str]) -> list[str]:
        return [f"- {item}" for item in items]

    warning = [n for n in content.notes if n == tables.RANDOM_WEIGHTS_WARNING]
    lines = [f"# {content.title}", ""]
    lines += [f"> **{w}**" for w in warning] + ([""] if warning else [])
    lines += ["## Setup", "", *bullets([n for n in content.notes if n not in warning]), ""]
    lines += ["## Results", "", content.results.to_markdown(), ""]
    lines += [*bullets(content.results_notes), ""] if content.results_notes else []
    if content.pairs is not None or content.timing_notes:
        pairs = [content.pairs.to_markdown(), ""] if content.pairs is not None else []
        lines += [f"## {PAIRS_HEADING}", "", *pairs, *bullets(content.timing_notes), ""]
    if content.failures:
        lines += ["## Failed runs", "", *bullets(content.failures), ""]
    if content.fidelity is not None:
        lines += [f"## {FIDELITY_HEADING}", "", content.fidelity.to_markdown(), "",
                  *bullets(content.fidelity_notes), ""]
    if content.pareto_png is not None:
        lines += ["## Accuracy vs latency", "", f"![Pareto plot]({_relative(content.pareto_png, out_dir)})", "",
                  *bullets(content.pareto_notes), ""]
    for section in content.sections:
        lines += [f"## {section.heading}", ""]
        lines += [section.table.to_markdown(), ""] if section.table is not None else []
        lines += [*bullets(section.notes), ""] if section.notes else []
        lines += [f"![{p.stem}]({_relative(p, out_dir)})" for p in section.images]
        lines += [""] if section.images else []
    for heading, table in (("Start-up (not in the statistics)", content.startup),
                           ("Network stages (mean ms)", content.stages)):
        if table is not None:
            lines += [f"## {heading}", "", table.to_markdown(), ""]
    if content.overlays or content.overlay_notes:
        lines += ["## Side by side", "", *bullets(content.overlay_notes), ""]
        lines += [f"![{p.stem}]({_relative(p, out_dir)})" for p in content.overlays]
    return "\n".join(lines).rstrip() + "\n"


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path) as file:
        file.write(text)
