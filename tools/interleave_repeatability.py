"""Is a two-model comparison repeatable? The same comparison run twice interleaved and twice in
blocks, each into a folder of its own, then the A/B median latency ratio of each run with its
95 % interval (issue 19's check: the interleaved ratios should agree within 5 %, the block ones
differ by more on a drifting machine).

    .venv/bin/python tools/interleave_repeatability.py --out out/repeatability \
        [--models r101,convnext-t] [--runtimes openvino] [--repeat 10] [-- EXTRA BENCHMARK ARGS]
    .venv/bin/python tools/interleave_repeatability.py --out out/repeatability --report-only

Runs ``maskbench benchmark`` four times (interleaved, blocks, interleaved, blocks: alternating,
so a slow hour falls on both kinds), ``--no-resume`` so each run measures. ``--report-only``
reads the four folders again. The machine should be otherwise idle; the printed table is what
docs/benchmark.md asks for.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from maskbench.results.intervals import compare_records
from maskbench.results.records import BenchmarkRecord, latest_records, read_records

RUNS = (("interleaved-1", "--interleave"), ("blocks-1", "--no-interleave"), ("interleaved-2", "--interleave"),
        ("blocks-2", "--no-interleave"))


def run_ratio(folder: Path) -> tuple[str, str, str] | None:
    """``(A/B, ratio [interval], paired or not)`` of the first two ok records of a run's folder."""
    records: list[BenchmarkRecord] = [r for r in latest_records(read_records(folder / "results.jsonl")) if r.ok]
    if len(records) < 2:
        return None
    comparison = compare_records(records[0], records[1])
    if comparison is None:
        return None
    a, b = (f"{r.alias} {r.runtime} {r.precision}" for r in records[:2])
    return f"{a} / {b}", comparison.ratio.text(3), "paired" if comparison.paired else "unpaired"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="r101,convnext-t")
    parser.add_argument("--runtimes", default="openvino")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("extra", nargs="*", help="more `maskbench benchmark` arguments (after --)")
    args = parser.parse_args()
    for name, flag in RUNS:
        command = [sys.executable, "-m", "maskbench.cli.main", "benchmark", "--models", args.models, "--runtimes",
                   args.runtimes, "--repeat", str(args.repeat), "--no-resume", flag, "--out", str(args.out / name),
                   *args.extra]
        if not args.report_only:
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True)
    print("| run | A / B | latency ratio A/B [95% CI] | intervals |")
    print("|---|---|---|---|")
    for name, _ in RUNS:
        found = run_ratio(args.out / name)
        print(f"| {name} | " + (" | ".join(found) if found else "– | – | no two ok records with 2+ rounds") + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
