"""Print maskbench's RF-DETR-Seg parity against rfdetr's fixtures, per size and frame, as a
markdown table (docs/rfdetr.md): float64 (and float32 with --float32) beside rfdetr's own
float32-vs-float64 spread.

    PYTHONPATH=src .venv/bin/python tools/rfdetr_parity_report.py [--sizes rfdetr-seg-n ...] [--float32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "parity"))

from rfdetr_parity import FRAMES, available_fixtures, load_fixture, parity_models, run_once  # noqa: E402


def cell(matched: int, count: int, box: float, score: float, iou: float) -> str:
    return f"{matched}/{count}, {box:.2g} px, {score:.2g}, IoU {iou:.6f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=available_fixtures())
    parser.add_argument("--float32", action="store_true")
    args = parser.parse_args()
    print("| size | frame | maskbench float64 vs rfdetr float64 | " +
          ("maskbench float32 vs rfdetr float64 | " if args.float32 else "") + "rfdetr float32 vs float64 | s |")
    print("|---|---|---|" + ("---|" if args.float32 else "") + "---|---|")
    for alias in args.sizes:
        fixture = load_fixture(alias)
        double, single, _ = parity_models(alias)
        for frame in FRAMES:
            start = time.perf_counter()
            cells = []
            for model in [double, single] if args.float32 else [double]:
                v = run_once(model, fixture, frame)
                cells.append(cell(v.matched, v.count, v.max_box_diff, v.max_score_diff, v.min_mask_iou))
            s = fixture["runs"][frame]["float32_spread"]
            cells.append(cell(s["matched"], s["reference_count"], s["max_box_diff"], s["max_score_diff"],
                              s["min_mask_iou"]))
            print(f"| {alias} | {frame} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
