"""The conversion check's rows as a text table (the terminal) or a Markdown table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .check_row import CheckRow

COLUMNS = ("model", "runtime", "precision", "image", "feature cosine", "feature rel err", "matched", "close",
           "max box diff px", "max score diff", "min mask IoU", "mean mask IoU", "eager ms", "runtime ms", "agrees")


def _cells(row: CheckRow) -> list[str]:
    return [row.model, row.runtime, row.precision, row.camera or row.image, _number(row.feature_cosine, ".4f"),
            _number(row.feature_rel_error, ".2e"), f"{row.matched}/{row.reference_count}",
            f"{row.close_pairs}/{row.reference_count}", f"{row.max_box_diff:.2e}", f"{row.max_score_diff:.1e}",
            f"{row.min_mask_iou:.4f}", f"{row.mean_mask_iou:.4f}", f"{row.eager_ms:.0f}", f"{row.runtime_ms:.0f}",
            "yes" if row.agrees else "NO"]


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "-"


def format_table(rows: Sequence[CheckRow]) -> str:
    table = [list(COLUMNS)] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)


def markdown_table(rows: Sequence[CheckRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)
