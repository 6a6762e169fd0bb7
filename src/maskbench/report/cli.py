"""``maskbench report`` and ``maskbench recommend``: read a benchmark's ``results.jsonl`` again,
render the report or pick a model under a budget (added to the main parser by
:func:`add_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MaskbenchError


def _budget(parse):
    def parse_argument(text: str) -> float:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse_argument


def _pair(text: str) -> tuple[str, str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) != 2:
        raise argparse.ArgumentTypeError(f"--pair takes two models, e.g. convnext-t,r101; got '{text}'")
    return names[0], names[1]


def add_commands(sub) -> None:
    from ..recommend import parse_latency_ms, parse_memory_mb

    results_help = "results.jsonl of a benchmark, or the folder holding it"
    report = sub.add_parser("report", help="render the benchmark report again from results.jsonl")
    report.add_argument("--results", type=Path, required=True, help=results_help)
    report.add_argument("--out", type=Path, default=None, help="report folder (default: the results folder)")
    report.add_argument("--pair", type=_pair, default=None,
                        help="two models drawn side by side, e.g. convnext-t,r101 (the default)")
    report.add_argument("--metric", choices=("mask_ap", "box_ap"), default="mask_ap", help="y axis of the plot")
    report.set_defaults(run=report_command)

    pick = sub.add_parser("recommend", help="the best model within a GPU memory / memory / latency budget")
    pick.add_argument("--results", type=Path, required=True, help=results_help)
    pick.add_argument("--max-gpu-memory", type=_budget(parse_memory_mb), default=None, help="e.g. 6GB")
    pick.add_argument("--max-memory", type=_budget(parse_memory_mb), default=None,
                      help="host memory (steady RSS), e.g. 8GB")
    pick.add_argument("--max-latency", type=_budget(parse_latency_ms), default=None,
                      help="end-to-end mean per image, e.g. 120ms or 1.2s")
    pick.add_argument("--metric", choices=("mask_ap", "box_ap"), default="mask_ap")
    pick.add_argument("--min-mask-iou", type=float, default=None,
                      help="fidelity floor: mean mask IoU against fp32 eager (records from benchmark --fidelity), "
                           "e.g. 0.9")
    pick.add_argument("--max-ap-drop", type=float, default=None,
                      help="fidelity floor: mask AP points lost to fp32 eager (benchmark --fidelity --coco), e.g. 1.0")
    pick.set_defaults(run=recommend_command)


def load_results(path: Path):
    """The newest record of each job in a results.jsonl (or the one inside a folder)."""
    from ..records import RESULTS_FILE, latest_records, read_records

    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.exists():
        raise MaskbenchError(f"{file}: no such results file; run `maskbench benchmark --out DIR` first")
    records = latest_records(read_records(file))
    if not records:
        raise MaskbenchError(f"{file}: no benchmark record in it; run `maskbench benchmark` first")
    return file, records


def report_command(args) -> int:
    from .benchmark_report import DEFAULT_PAIR, write_report

    file, records = load_results(args.results)
    out = args.out or file.parent
    files = write_report(records, out, overlay_pair=args.pair or DEFAULT_PAIR, results_dir=file.parent,
                         metric=args.metric)
    for note in files.notes:
        print(note)
    print(f"report: {files.html} (and {files.markdown.name}, {files.csv.name}, {files.json.name}, "
          f"{files.pareto_png.name}, {len(files.overlays)} overlay(s)) from {len(records)} record(s)")
    return 0


def recommend_command(args) -> int:
    """Exit status 0 with a pick, 1 when nothing fits (scripts can test it)."""
    from ..recommend import recommend

    _, records = load_results(args.results)
    result = recommend(records, max_gpu_memory_mb=args.max_gpu_memory, max_memory_mb=args.max_memory,
                       max_latency_ms=args.max_latency, metric=args.metric, min_mask_iou=args.min_mask_iou,
                       max_ap_drop=args.max_ap_drop)
    print(result.describe())
    return 0 if result.pick else 1
