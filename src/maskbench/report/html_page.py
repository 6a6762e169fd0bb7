"""One self-contained HTML page: CSS inline, every picture a base64 data URI, no URL at all,
so the file can be mailed, archived or opened offline and still shows everything.

Overlays are inlined as JPEG at most ``OVERLAY_WIDTH`` wide (a side-by-side PNG of two
1600x900 frames is megabytes; the page only needs to show it); the full PNGs stay in
``overlays/``.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from maskbench.report.tables import RANDOM_WEIGHTS_WARNING, Table

OVERLAY_WIDTH = 1600
FIDELITY_HEADING = "Fidelity against fp32 eager PyTorch"
PAIRS_HEADING = "Comparisons within measurement (latency ratios)"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: 8px 12px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figure { margin: 12px 0; } figcaption { font-size: 12px; color: #555; }
li { margin: 2px 0; }
"""


@dataclass
class Section:
    """A report section of its own (the rig's capacity and load plots): a table, notes, pictures."""

    heading: str
    table: Table | None = None
    notes: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


@dataclass
class PageContent:
    title: str
    notes: list[str]
    results: Table
    results_notes: list[str] = field(default_factory=list)  # the under-load footnote
    pairs: Table | None = None  # latency ratios of the jobs compared directly (interleaved)
    timing_notes: list[str] = field(default_factory=list)
    startup: Table | None = None
    stages: Table | None = None
    fidelity: Table | None = None
    fidelity_notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    pareto_png: Path | None = None
    pareto_notes: list[str] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    overlay_notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)  # after the Pareto plot (report/rig_section.py)


def data_uri(path: Path, max_width: int | None = None) -> str:
    """The image as a data URI: PNG unchanged, or (with ``max_width``) a reduced JPEG."""
    if max_width is None:
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        if image.width > max_width:
            image = image.resize((max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>" if items else ""


def render_page(content: PageContent) -> str:
    esc = html.escape
    warning = [n for n in content.notes if n == RANDOM_WEIGHTS_WARNING]
    notes = [n for n in content.notes if n != RANDOM_WEIGHTS_WARNING]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(content.title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{esc(content.title)}</h1>"]
    parts += [f"<p class='warning'>{esc(w)}</p>" for w in warning]
    parts.append(f"<h2>Setup</h2>{_list(notes)}")
    parts.append(f"<h2>Results</h2><div class='scroll'>{content.results.to_html()}</div>{_list(content.results_notes)}")
    if not content.results.rows:
        parts.append("<p>No model finished.</p>")
    if content.pairs is not None or content.timing_notes:
        table = f"<div class='scroll'>{content.pairs.to_html()}</div>" if content.pairs is not None else ""
        parts.append(f"<h2>{PAIRS_HEADING}</h2>{table}{_list(content.timing_notes)}")
    if content.failures:
        parts.append(f"<h2>Failed runs</h2>{_list(content.failures)}")
    if content.fidelity is not None:
        parts.append(f"<h2>{FIDELITY_HEADING}</h2><div class='scroll'>{content.fidelity.to_html()}</div>"
                     f"{_list(content.fidelity_notes)}")
    if content.pareto_png is not None:
        parts.append(f"<h2>Accuracy vs latency</h2><figure><img alt='Pareto plot' src='{data_uri(content.pareto_png)}'>"
                     f"</figure>{_list(content.pareto_notes)}")
    for section in content.sections:
        table = f"<div class='scroll'>{section.table.to_html()}</div>" if section.table is not None else ""
        parts.append(f"<h2>{esc(section.heading)}</h2>{table}{_list(section.notes)}")
        parts += [f"<figure><img alt='{esc(p.stem)}' src='{data_uri(p)}'><figcaption>{esc(p.name)}</figcaption>"
                  "</figure>" for p in section.images]
    if content.startup is not None:
        parts.append(f"<h2>Start-up (not in the statistics)</h2><div class='scroll'>{content.startup.to_html()}</div>")
    if content.stages is not None:
        parts.append(f"<h2>Network stages (mean ms)</h2><div class='scroll'>{content.stages.to_html()}</div>")
    if content.overlays or content.overlay_notes:
        parts.append("<h2>Side by side</h2>" + _list(content.overlay_notes))
        parts += [f"<figure><img alt='{esc(p.name)}' src='{data_uri(p, OVERLAY_WIDTH)}'>"
                  f"<figcaption>{esc(p.name)}</figcaption></figure>" for p in content.overlays]
    parts.append("</body></html>")
    return "\n".join(parts)
