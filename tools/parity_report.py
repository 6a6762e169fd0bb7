"""Print the measured parity with MMDetection per zoo model and run, as a Markdown table.

    .venv/bin/python tools/parity_report.py > /tmp/parity.md

Uses the committed fixtures (tests/parity/fixtures, made by tools/oracle/make_fixtures.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from parity.parity import available_fixtures, run_parity  # noqa: E402


def main() -> None:
    print("| model | frame / preprocessing | matched | worst box diff (px) | worst score diff | min mask IoU | "
          "area-weighted mask IoU | same input tensor |")
    print("|---|---|---|---|---|---|---|---|")
    for alias in available_fixtures():
        _, results = run_parity(alias)
        for r in results:
            a = r.agreement
            print(f"| {alias} | {r.run} | {a.matched}/{a.reference_count} | {a.max_box_diff:.2g} | "
                  f"{a.max_score_diff:.2g} | {a.min_mask_iou:.4f} | {a.area_weighted_mask_iou:.5f} | "
                  f"{'yes' if r.preprocessing_matches else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
