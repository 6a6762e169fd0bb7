"""Print the measured parity with MMDetection per zoo model, run and precision, as Markdown.

    .venv/bin/python tools/parity_report.py [--models r50 ...] > /tmp/parity.md

Uses the committed float64 fixtures (tests/parity/fixtures, made by
tools/oracle/make_fixtures.py): maskbench in float64 against MMDetection in float64, and
maskbench in float32 against the same fixtures beside MMDetection's own float32 spread (its
float32 run against its float64 run, recorded by the oracle).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from parity.parity import RUNS, available_fixtures, load_fixture, run_parity  # noqa: E402


def _row(alias: str, run: str, who: str, a, input_diff: str) -> str:
    return (f"| {alias} | {run} | {who} | {a['matched']}/{a['reference_count']} | {a['max_box_diff']:.2g} | "
            f"{a['max_score_diff']:.2g} | {a['min_mask_iou']:.4f} | {a['area_weighted_mask_iou']:.5f} | {input_diff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    print("| model | frame / preprocessing | compared with MMDetection float64 | matched | worst box diff (px) | "
          "worst score diff | min mask IoU | area-weighted mask IoU | input tensor (rel. diff) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for alias in args.models or available_fixtures():
        spread = load_fixture(alias)["float32_spread"]
        results = {(r.run, r.precision): r for p in ("float64", "float32") for r in run_parity(alias, p, RUNS)}
        for run in RUNS:
            for precision in ("float64", "float32"):
                r = results[(run, precision)]
                print(_row(alias, run, f"maskbench {precision}", r.agreement.as_dict(), f"{r.input_difference:.1g}"))
            print(_row(alias, run, "MMDetection float32", spread[run], "-"), flush=True)


if __name__ == "__main__":
    main()
