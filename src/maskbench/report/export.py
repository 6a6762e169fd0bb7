"""The records as ``results.csv`` (flat, for spreadsheets) and ``results.json`` (the records
as dicts, for programs; ``BenchmarkRecord.from_dict`` reads each back unchanged)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from maskbench.pipeline.coco_results import write_json_atomic
from maskbench.results.machine_load import under_load_reason
from maskbench.results.records import BenchmarkRecord
from maskbench.utils.files import atomic_open


def flatten(record: BenchmarkRecord) -> dict[str, object]:
    """One level of columns: nested dicts become ``parent.child`` (``end_to_end.mean_ms``,
    ``stages.backbone.p95_ms``, ``environment.packages.torch``); lists become JSON text.
    ``images_per_s`` is added, the table's throughput column, and ``measured_under_load`` (why,
    or empty: :func:`maskbench.results.machine_load.under_load_reason`)."""
    flat: dict[str, object] = {}

    def put(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                put(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, (list, tuple)):
            flat[prefix] = json.dumps(list(value))
        else:
            flat[prefix] = value

    put("", record.to_dict())
    stats = record.latency()
    flat["images_per_s"] = stats.images_per_s if stats else None
    flat["measured_under_load"] = under_load_reason(record)
    return flat


def csv_text(records: Sequence[BenchmarkRecord]) -> str:
    rows = [flatten(r) for r in records]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def write_csv(path: Path, records: Sequence[BenchmarkRecord]) -> Path:
    text = csv_text(records)
    with atomic_open(path) as file:
        file.write(text)
    return path


def write_json(path: Path, records: Sequence[BenchmarkRecord]) -> Path:
    return write_json_atomic(path, [r.to_dict() for r in records], indent=1)
