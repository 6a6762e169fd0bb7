"""The report's tables and notes, as plain data rendered to Markdown or HTML.

Every number comes from the records (which got their AP, schedule and parameter count from
the zoo), never from this module: a table cannot disagree with the measurements it shows.
Memory is in MiB (what the worker measures), latency in milliseconds per image.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from maskbench.results.intervals import TIE, compare_records, compared_directly, record_median_interval
from maskbench.results.machine_load import under_load_reason
from maskbench.results.machines import machine_label, machines_of
from maskbench.results.records import TIMING_INTERLEAVED, BenchmarkRecord
from maskbench.zoo import MODELS, FamilyEntry, stage_order  # the networks' order, over the families shown
from maskbench.zoo.weights_kind import are_random

MISSING = "–"
UNDER_LOAD_MARK = "†"
_NUMBER = re.compile(r"^[–\-+]?[\d,]*\.?\d*$")
RANDOM_WEIGHTS_WARNING = (
    "random weights: AP columns are the zoo's published numbers for the official weights, not measured; "
    "overlays show untrained detections and are meaningless as quality"
)


T = TypeVar("T")
Column = tuple[str, Callable[[T], str]]  # a table's header and the cell text of one item


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]

    def to_markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        return "\n".join([line(self.headers), line(["---"] * len(self.headers)), *map(line, self.rows)])

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        def cell(text: str) -> str:  # numbers right-aligned, words left
            if _NUMBER.match(text):
                return f"<td class='num'>{html.escape(text)}</td>"
            return f"<td>{html.escape(text)}</td>"

        body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    @classmethod
    def of(cls, items: Sequence[T], columns: Sequence[Column[T]]) -> Table:
        """One row per item, one cell per column: ``(header, the item's cell text)``."""
        return cls([header for header, _ in columns], [[cell(item) for _, cell in columns] for item in items])



def fmt(value: float | int | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def _mean(record: BenchmarkRecord, part: str) -> float | None:
    stats = record.latency(part)
    return stats.mean_ms if stats else None


def _stat(part: str, field: str) -> Callable[[BenchmarkRecord], str]:
    def cell(record: BenchmarkRecord) -> str:
        stats = record.latency(part)
        return fmt(getattr(stats, field) if stats else None)

    return cell


def _images_per_s(record: BenchmarkRecord) -> str:
    stats = record.latency()
    return fmt(stats.images_per_s if stats else None, 2)


def _gpu_mb(record: BenchmarkRecord) -> float | None:
    return record.gpu_memory_mb if record.gpu_memory_mb is not None else record.torch_cuda_peak_mb


def name_of(record: BenchmarkRecord) -> str:
    return record.alias or record.model or str(record.job.get("model", "?"))


def results_table(records: Sequence[BenchmarkRecord]) -> Table:
    """The study's table, one row per ok record; measured-AP and GPU columns only when some
    record has them (a CPU-only run has no empty GPU column)."""
    ok = [r for r in records if r.ok]
    columns: list[Column[BenchmarkRecord]] = [
        ("Model", lambda r: name_of(r) + (f" {UNDER_LOAD_MARK}" if under_load_reason(r) else "")),
        # records merged from several machines (report --results A B): which one made the row
        *([("Machine", lambda r: machine_label(r.environment))]
          if len(machines_of(ok, lambda r: r.environment)) > 1 else []),
        ("Backbone", lambda r: r.backbone or MISSING),
        ("Schedule", lambda r: r.schedule or MISSING),
        ("Runtime", lambda r: r.runtime),
        ("Precision", lambda r: r.precision),
        ("Box AP (zoo)", lambda r: fmt(r.zoo_box_ap)),
        ("Mask AP (zoo)", lambda r: fmt(r.zoo_mask_ap)),
    ]
    if any(r.measured_box_ap is not None or r.measured_mask_ap is not None for r in ok):
        columns += [("Box AP (measured)", lambda r: fmt(r.measured_box_ap)),
                    ("Mask AP (measured)", lambda r: fmt(r.measured_mask_ap))]
    columns += [
        ("Mean ms", _stat("end_to_end", "mean_ms")),
        ("p50 ms", _stat("end_to_end", "p50_ms")),
        *([("p50 95% CI ms", _median_interval)] if any(record_median_interval(r) for r in ok) else []),
        ("p95 ms", _stat("end_to_end", "p95_ms")),
        ("Images/s", _images_per_s),
        ("Preprocess ms", _stat("preprocess", "mean_ms")),
        ("Inference ms", _stat("inference", "mean_ms")),
        ("Postprocess ms", _stat("postprocess", "mean_ms")),
        *([("GFLOP/s (of peak)", _achieved)] if any(r.achieved_gflops is not None for r in ok) else []),
        ("Steady RSS MiB", lambda r: fmt(r.steady_rss_mb, 0)),
    ]
    if any(_gpu_mb(r) is not None for r in ok):
        columns.append(("GPU MiB", lambda r: fmt(_gpu_mb(r), 0)))
    columns += [
        ("Artifact MiB", lambda r: fmt(r.artifact_mb, 0)),
        ("Params (M)", lambda r: fmt(r.params / 1e6 if r.params is not None else None)),
    ]
    return Table.of(ok, columns)


def _achieved(record: BenchmarkRecord) -> str:
    if record.achieved_gflops is None:
        return MISSING
    share = f" ({100.0 * record.peak_share:.0f} %)" if record.peak_share is not None else ""
    return f"{record.achieved_gflops:,.0f}{share}"


def _median_interval(record: BenchmarkRecord) -> str:
    interval = record_median_interval(record)
    return f"{interval.low:,.1f}–{interval.high:,.1f}" if interval else MISSING


def label_of(record: BenchmarkRecord) -> str:
    return f"{name_of(record)} {record.runtime} {record.precision}"


def pairs_table(records: Sequence[BenchmarkRecord]) -> Table | None:
    """Every pair of ok records compared directly (interleaved call by call): their latency
    ratio from the pairs of neighbouring calls with its paired 95 % interval
    (:func:`maskbench.results.intervals.compare_records`), and the verdict; None when no record was
    interleaved with another."""
    ok = [r for r in records if r.ok]
    rows = []
    for index, a in enumerate(ok):
        for b in ok[index + 1:]:
            comparison = compare_records(a, b) if compared_directly(a, b) else None
            if comparison is not None:
                rows.append([label_of(a), label_of(b), comparison.ratio.text(3),
                             comparison.verdict(label_of(a), label_of(b))])
    if not rows:
        return None
    return Table(["A", "B", "A/B latency [95% CI]", "Verdict"], rows)


def timing_notes(records: Sequence[BenchmarkRecord]) -> list[str]:
    """How the rows were timed, which were compared directly, and how to read the intervals."""
    ok = [r for r in records if r.ok]
    groups: dict[str, list[str]] = {}
    for record in ok:
        if record.timing == TIMING_INTERLEAVED and record.interleave_group:
            groups.setdefault(record.interleave_group, []).append(label_of(record))
    blocks = [label_of(r) for r in ok if r.timing != TIMING_INTERLEAVED]
    notes = []
    if groups:
        notes.append("timing interleaved: the jobs of a group took turns, one timed call each, so the "
                     "machine's drift fell on all of them alike; compared directly: "
                     + "; ".join(f"group {n}: {', '.join(labels)}" for n, labels in enumerate(groups.values(), 1)))
    if blocks and groups:
        notes.append(f"timed in blocks of their own (not compared directly): {', '.join(blocks)}")
    if any(record_median_interval(r) for r in ok):
        notes.append("p50 95% CI: percentile bootstrap of the median over the timed calls; the pairs table: "
                     "trimmed geometric mean of the ratios of neighbouring calls (A's k-th over B's k-th), paired "
                     "bootstrap over those pairs (resampled jointly, which cancels drift); an interval containing 1 is "
                     f"a {TIE}: neither is faster on these numbers")
    return notes


def under_load_notes(records: Sequence[BenchmarkRecord]) -> list[str]:
    """The results table's footnote: what its mark means, then each marked row and why
    (:func:`maskbench.results.machine_load.under_load_reason`); empty when no row is marked."""
    loaded = [(r, reason) for r in records if r.ok and (reason := under_load_reason(r))]
    if not loaded:
        return []
    return [f"{UNDER_LOAD_MARK} measured under load: other work wanted the CPU while these rows were timed (1-min "
            "load average above the usable CPUs, or another maskbench worker running), so their latencies may be "
            "higher than on a quiet machine; measure them again with the machine idle"] + \
        [f"{name_of(r)} / {r.runtime} / {r.precision}: {reason}" for r, reason in loaded]


def stage_table(records: Sequence[BenchmarkRecord]) -> Table | None:
    """Mean ms of each network stage, for the records that timed them (``benchmark --stages``)."""
    timed = [r for r in records if r.ok and r.stages]
    if not timed:
        return None
    stages: list[str] = []
    for record in timed:
        stages += [name for name in record.stages if name not in stages]
    order = stage_order(_families(timed))
    stages.sort(key=lambda name: order.index(name) if name in order else len(order))
    rows = [[name_of(r), r.runtime, r.precision, *(fmt(_mean(r, s)) for s in stages), fmt(_mean(r, "inference"))]
            for r in timed]
    return Table(["Model", "Runtime", "Precision", *(f"{s} ms" for s in stages), "Inference ms (whole)"], rows)


def _families(records: Sequence[BenchmarkRecord]) -> list[FamilyEntry]:
    """The families of the records' models, in the zoo's order (a model no longer in the zoo: none)."""
    names = {r.model for r in records}
    return list(dict.fromkeys(spec.family for spec in MODELS if spec.name in names))


def _has_fidelity(record: BenchmarkRecord) -> bool:
    return record.ok and any(getattr(record, name) is not None for name in
                             ("feature_cosine", "mean_mask_iou", "ap_drop", "fidelity_note"))


def fidelity_table(records: Sequence[BenchmarkRecord]) -> Table | None:
    """Each record against fp32 eager PyTorch on the same frames (``benchmark --fidelity``);
    None when no record was measured so."""
    measured = [r for r in records if _has_fidelity(r)]
    if not measured:
        return None

    def matched(record: BenchmarkRecord) -> str:
        if record.fidelity_matched is None:
            return MISSING
        return f"{record.fidelity_matched:.1f}/{fmt(record.fidelity_reference_count)}"

    rows = [[name_of(r), r.runtime, r.precision, fmt(r.feature_cosine, 4),
             MISSING if r.feature_rel_error is None else f"{r.feature_rel_error:.2e}", matched(r),
             fmt(r.mean_mask_iou, 3), fmt(r.area_weighted_mask_iou, 3), fmt(r.reference_mask_ap),
             fmt(r.ap_drop, 2)] for r in measured]
    return Table(["Model", "Runtime", "Precision", "Feature cosine (min)", "Feature rel. error (max)",
                  "Matched / frame", "Mean mask IoU", "Area-weighted mask IoU", "Mask AP fp32 eager", "AP drop"], rows)


def fidelity_notes(records: Sequence[BenchmarkRecord]) -> list[str]:
    """How to read the fidelity table, then each distinct note the records carry (the
    random-weights sentence; why a runtime has no measurement)."""
    measured = [r for r in records if _has_fidelity(r)]
    if not measured:
        return []
    notes = ["against fp32 eager PyTorch on the same preprocessed frames: feature cosine = lowest cosine similarity "
             "over the neck's levels (Mask R-CNN P2-P6, RTMDet-Ins P3-P5, RF-DETR-Seg P4) and the frames, rel. error = "
             "highest ||runtime - eager|| / ||eager||; matched = "
             "detections matched to eager's (same class, box IoU >= 0.5), mean per frame; mask IoU over the matched "
             "pairs; AP drop = fp32 eager mask AP - this row's measured mask AP (points, with --coco)"]
    for record in measured:
        note = record.fidelity_note
        if note and note.startswith("no fidelity measurement"):
            notes.append(f"{name_of(record)} / {record.runtime} / {record.precision}: {note}")
        elif note and note not in notes:
            notes.append(note)
    return notes


def startup_table(records: Sequence[BenchmarkRecord]) -> Table | None:
    """What the statistics leave out: building the model, export/compile, the cold first call."""
    ok = [r for r in records if r.ok]
    if not ok:
        return None
    rows = [[name_of(r), r.runtime, r.precision, fmt(r.setup_s, 2), fmt(r.prepare_s, 2), fmt(r.first_call_ms),
             fmt(_mean(r, "decode")), fmt(r.peak_rss_mb, 0)] for r in ok]
    return Table(["Model", "Runtime", "Precision", "Setup s", "Prepare s", "Cold first call ms", "Decode ms",
                  "Peak RSS MiB"], rows)


def failure_lines(records: Sequence[BenchmarkRecord]) -> list[str]:
    """One line per record that did not finish: what, how, why (first line of the error)."""
    lines = []
    for record in records:
        if record.ok:
            continue
        reason = (record.error or "no reason recorded").strip().splitlines()
        runtime = record.runtime or record.job.get("runtime", "?")
        precision = record.precision or record.job.get("precision", "?")
        lines.append(f"{name_of(record)} / {runtime} / {precision}: {record.status}: {reason[0] if reason else ''}")
    return lines


def _distinct(values) -> str:
    seen = []
    for value in values:
        if value not in (None, "", [], {}) and value not in seen:
            seen.append(value)
    return " / ".join(str(v) for v in seen) or MISSING


def setup_notes(records: Sequence[BenchmarkRecord]) -> list[str]:
    """What a reader needs before trusting the table: weights, preprocessing, machine,
    libraries, repetitions and which rows were trained differently."""
    ok = [r for r in records if r.ok] or list(records)
    notes = []
    if any(are_random(r.weights_kind) for r in records):
        notes.append(RANDOM_WEIGHTS_WARNING)
    notes.append(f"weights: {_distinct(r.weights or r.weights_kind for r in ok)}")
    sizes = _distinct(_size(r) for r in ok)
    notes.append(f"preprocessing: {_distinct(r.mode for r in ok)}; network input (HxW, padded): {sizes}")
    notes.append(f"device: {_distinct(r.device for r in ok)}; threads: {_distinct(r.threads for r in ok)}")
    machine = _distinct(r.environment.get("cpu") for r in ok)
    gpu = _distinct(r.environment.get("gpu") for r in ok)
    notes.append(f"machine: {machine}" + (f"; GPU: {gpu}" if gpu != MISSING else "")
                 + f"; usable CPUs: {_distinct(r.environment.get('usable_cpus') for r in ok)}")
    notes.append(f"libraries: {library_versions(ok)}")
    timed = _distinct(latency.count for r in ok if (latency := r.latency()))
    notes.append(f"repetitions: {_distinct(r.job.get('warmup') for r in ok)} warm-up call(s) after the cold first "
                 f"call (both excluded), {_distinct(r.job.get('repeat') for r in ok)} timed pass(es) over "
                 f"{_distinct(r.images for r in ok)} frame(s) = {timed} timed call(s) per row; "
                 "cold first call and prepare (export/compile) time in the start-up table")
    notes.append(schedule_note(ok))
    return notes


def _size(record: BenchmarkRecord) -> str | None:
    return "x".join(map(str, record.input_hw)) if record.input_hw else None


def library_versions(records: Sequence[BenchmarkRecord]) -> str:
    """``name version`` of every package any record names (several versions joined by /)."""
    versions: dict[str, list[str]] = {}
    for record in records:
        packages = dict(record.environment.get("packages") or {})
        packages.setdefault("python", record.environment.get("python"))
        for name, version in packages.items():
            if version and version not in versions.setdefault(name, []):
                versions[name].append(str(version))
    return ", ".join(f"{name} {' / '.join(v)}" for name, v in versions.items() if v) or MISSING


def schedule_note(records: Sequence[BenchmarkRecord]) -> str:
    """Which models were trained longer or otherwise: AP gaps are not all the backbone's."""
    by_training: dict[tuple[str, str], list[str]] = {}
    for record in records:
        names = by_training.setdefault((record.schedule, record.recipe), [])
        if name_of(record) not in names:
            names.append(name_of(record))
    if not by_training:
        return "training: no model measured"
    if len(by_training) == 1:
        schedule, recipe = next(iter(by_training))
        return f"training: every model {schedule} ({recipe}), so AP differences are the architectures'"
    groups = "; ".join(f"{', '.join(names)}: {schedule or '?'} ({recipe or '?'})"
                       for (schedule, recipe), names in by_training.items())
    return f"training differs between zoo rows, so AP gaps are not only the backbones': {groups}"
