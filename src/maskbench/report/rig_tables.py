"""The rig's capacity table: per model x runtime x precision x configuration (and machine, when
records from several machines are merged), the load that held the deadline and its figures:
p50/p99 latency from arrival to detections, misses, CPU seconds per frame and energy per frame,
or "no counter" where the machine had none (CPU seconds per frame then stand in)."""

from __future__ import annotations

from collections.abc import Sequence

from maskbench.report.tables import MISSING, Column, Table, fmt
from maskbench.results.machines import machine_label, machines_of
from maskbench.results.rig_records import RigRecord

NO_COUNTER = "no counter"


def held_text(record: RigRecord) -> str:
    """The load that held, in words: ``4 cameras at 12 Hz`` (``+``: the search stopped at its
    limit), ``3 cameras at 20 Hz`` for a rate search, or a single run's verdict."""
    if record.load_unit is None:
        verdict = "holds" if record.holds else "fails"
        return f"{record.cameras} cam at {record.rate_hz:g} Hz: {verdict}"
    if not record.holds or record.capacity <= 0:
        return "none held"
    more = "+" if record.capacity_at_limit else ""
    if record.load_unit == "cameras":
        return f"{record.capacity:g}{more} cam at {record.rate_hz:g} Hz"
    return f"{record.cameras} cam at {record.capacity:g}{more} Hz"


def miss_text(record: RigRecord) -> str:
    if record.miss_share is None:
        return MISSING
    count = f" ({record.misses})" if record.misses is not None else ""
    return f"{100.0 * record.miss_share:.1f} %{count}"


def energy_text(record: RigRecord) -> str:
    if not record.energy_j_per_frame:
        return NO_COUNTER
    return "; ".join(f"{label} {joules:.3g} J" for label, joules in sorted(record.energy_j_per_frame.items()))


def capacity_table(records: Sequence[RigRecord]) -> Table:
    """One row per record, sorted by model, runtime, precision, configuration; a machine column
    only when the records come from more than one machine."""
    several = len(machines_of(records, lambda r: r.machine)) > 1
    ordered = sorted(records, key=lambda r: (r.alias or r.model, r.runtime, r.precision, r.config,
                                             machine_label(r.machine), r.load_unit or "", r.cameras, r.rate_hz))
    columns: list[Column[RigRecord]] = [
        ("Model", lambda r: r.alias or r.model), ("Runtime", lambda r: r.runtime),
        ("Precision", lambda r: r.precision), ("Config", lambda r: r.config),
        *([("Machine", lambda r: machine_label(r.machine))] if several else []),
        ("Held", held_text), ("Deadline ms", lambda r: fmt(r.deadline_ms, 0)), ("p50 ms", lambda r: fmt(r.p50_ms, 0)),
        ("p99 ms", lambda r: fmt(r.p99_ms, 0)), ("Misses", miss_text), ("Frames/s", lambda r: fmt(r.processed_hz)),
        ("CPU-s/frame", lambda r: fmt(r.cpu_s_per_frame, 3)), ("Energy/frame", energy_text),
    ]
    return Table.of(ordered, columns)


def capacity_notes(records: Sequence[RigRecord]) -> list[str]:
    """How to read the table, and the machines' energy statements (why there is no counter)."""
    notes = ["Held: the largest load whose misses (late, dropped, undecodable or unfinished frames) stayed within "
             "the run's --max-miss of the offered frames, confirmed by repeated trials (--find-max), or one "
             "replay's verdict; the figures are those of the run at that load",
             "Latency runs from a frame's arrival to its detections (queueing, decoding, pre- and post-processing "
             "included)"]
    if any(not r.has_energy for r in records):
        notes.append(f"Energy/frame '{NO_COUNTER}': the machine had no readable energy counter (RAPL, NVML, "
                     "INA3221); CPU-s/frame is the compute cost instead")
    statements = sorted({s for r in records for s in r.energy_statements})
    notes += statements
    covers = sorted({f"{label}: {what}" for r in records for label, what in r.energy_covers.items()})
    if covers:
        notes.append("energy counters: " + "; ".join(covers))
    return notes
