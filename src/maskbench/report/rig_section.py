"""The rig's part of the report (``maskbench rig`` records in ``results.jsonl``): the capacity
table and one latency-versus-offered-load plot per model, as sections of the benchmark report's
Markdown and HTML page (:func:`maskbench.report.benchmark_report.write_report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from maskbench.report.html_page import Section
from maskbench.report.load_plot import write_load_plots
from maskbench.report.rig_tables import capacity_notes, capacity_table
from maskbench.results.rig_records import RigRecord, latest_rig_records

CAPACITY_HEADING = "Camera rig: capacity within the deadline"
LOAD_HEADING = "Camera rig: latency vs offered load"


def rig_sections(records: Sequence[RigRecord], out_dir: Path) -> tuple[list[Section], list[Path]]:
    """The sections (none without rig records) and the plot files written into ``out_dir``."""
    records = latest_rig_records(list(records))
    if not records:
        return [], []
    plots = write_load_plots(records, out_dir)
    load_notes = ["x: frames per second offered by all cameras together; solid: p99, dashed: p50; filled markers "
                  "held the deadline (misses within --max-miss), hollow ones did not; dotted: the deadline",
                  "points: the trials of a capacity search (--find-max) and single runs at different loads"]
    sections = [Section(CAPACITY_HEADING, capacity_table(records), capacity_notes(records))]
    if plots:
        sections.append(Section(LOAD_HEADING, None, load_notes, plots))
    return sections, plots
