"""Human-readable views of the zoo table (terminal and Markdown), generated, never hand-written."""

from __future__ import annotations

from .specs import ModelSpec
from .table import MODELS

COLUMNS = ("alias", "family", "model (config name)", "backbone", "schedule", "box AP", "mask AP",
           "params (M)", "study")


def _row(spec: ModelSpec) -> tuple[str, ...]:
    w = spec.weights
    return (spec.alias, spec.family.display_name, spec.name, spec.backbone, w.schedule, _ap(w.box_ap),
            _ap(w.mask_ap), f"{spec.num_params / 1e6:.1f}", "yes" if spec.in_study else "")


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown_table() -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(spec)) + " |" for spec in MODELS]
    return "\n".join(lines)


def text_table() -> str:
    rows = [COLUMNS] + [_row(spec) for spec in MODELS]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(r, widths)).rstrip() for r in rows)


def describe(spec: ModelSpec) -> str:
    w = spec.weights
    return "\n".join([
        f"{spec.name}  (alias: {spec.alias})",
        f"  architecture: {spec.family.architecture.format(backbone=spec.backbone)}, COCO 80 classes",
        f"  input:        {_input(spec)}",
        f"  training:     {w.schedule} schedule; {w.recipe}",
        f"  COCO val2017: box AP {_ap(w.box_ap)}, mask AP {_ap(w.mask_ap)} (published by {w.published_by})",
        f"  parameters:   {spec.num_params:,}",
        f"  checkpoint:   {w.url}",
        f"  sha256:       {w.sha256_prefix}..." if w.sha256_prefix else f"  md5:          {w.md5}",
        f"  config:       {spec.config_url}",
        f"  licence:      {w.licence}",
        f"  in the study: {'yes' if spec.in_study else 'no'}",
    ])


def _input(spec: ModelSpec) -> str:
    fmt = spec.input_format
    stretch = "x".join(map(str, fmt.stretch_size))
    keep = "x".join(map(str, fmt.keep_ratio_scale))
    if not fmt.keep_ratio:
        scaled = f" / {fmt.pixel_divisor:g}" if fmt.pixel_divisor else ""
        return f"{'BGR' if fmt.bgr else 'RGB'}{scaled}; stretch {stretch} (no keep-ratio mode), unpadded"
    pad = f"padded to {keep} with {fmt.pad_value:g}" if fmt.pad_to_scale else f"zero-padded to /{fmt.pad_divisor}"
    return f"{'BGR' if fmt.bgr else 'RGB'}; stretch {stretch} or keep-ratio within {keep}, {pad}"
