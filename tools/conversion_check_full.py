"""Every zoo architecture at the study's 1344x800 on ONNX Runtime and OpenVINO vs eager PyTorch,
on the six embedded nuScenes frames; writes a Markdown table (and the rows as JSON).

    .venv/bin/python tools/conversion_check_full.py --out out/conversion_check_full
    .venv/bin/python tools/conversion_check_full.py --models r50 --repeats 3   # one model, timed

Random weights are calibrated on the checked frames (see maskbench.verify.conversion_check).
The 3x variants share their 1x twin's architecture and are skipped unless named. Latencies are
the best of --repeats runs of the network alone (no preprocessing, no mask pasting), after one
warm-up run, on the threads given (default: torch's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes import get_runtime
from maskbench.utils.names import STUDY_INPUT_SIZE
from maskbench.verify.conversion_check import check_conversion
from maskbench.verify.results_file import environment_info, write_json
from maskbench.verify.tables import format_table, markdown_table
from maskbench.zoo import MODELS, get_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated aliases (default: one per architecture)")
    parser.add_argument("--runtimes", default="onnxruntime,openvino")
    parser.add_argument("--cameras", default=None, help="e.g. CAM_FRONT,CAM_BACK (default: all six)")
    parser.add_argument("--input-size", default="1344x800")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("out/conversion_check_full"))
    args = parser.parse_args(argv)

    width, height = (int(v) for v in args.input_size.lower().split("x"))
    size = (width, height) if (width, height) != STUDY_INPUT_SIZE else None
    if args.models:
        aliases = [get_spec(a.strip()).alias for a in args.models.split(",") if a.strip()]
    else:
        aliases = [spec.alias for spec in {spec.build_backbone: spec for spec in MODELS}.values()]
    runtime_names = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
    frames = load_frames(cameras=cameras)
    args.out.mkdir(parents=True, exist_ok=True)

    all_rows, timings = [], []
    for alias in aliases:
        start = time.perf_counter()
        loaded = calibrated_random_model(alias, frames, ResizeMode.STRETCH, size or STUDY_INPUT_SIZE)
        runtimes = [get_runtime(name, loaded, threads=args.threads) for name in runtime_names]
        rows = check_conversion(loaded, runtimes, frames, ResizeMode.STRETCH, size or STUDY_INPUT_SIZE, args.repeats)
        timings.append((alias, time.perf_counter() - start))
        print(format_table(rows), flush=True)
        all_rows.extend(rows)
        write_json(all_rows, args.out / "rows.json", {**environment_info(args.threads), "input_size": args.input_size})

    summary = _summary(all_rows)
    environment = environment_info(args.threads)
    environment = {**environment.pop("packages"), **environment}  # versions first, as one line
    text = "\n\n".join([
        f"# Conversion check: eager PyTorch vs {', '.join(runtime_names)} at {width}x{height} (stretch)",
        f"Random weights calibrated on the checked frames; {len(frames)} embedded nuScenes frame(s) "
        f"({', '.join(cameras) if cameras else 'all six cameras'}); fp32 on the CPU.",
        "Per model and runtime (worst frame; latency: median over frames, best of "
        f"{args.repeats} run(s) each, network only):",
        summary,
        "Per frame:",
        markdown_table(all_rows),
        "Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()),
        "Wall time per model (calibration, export, compile, runs): "
        + ", ".join(f"{a} {t:.0f} s" for a, t in timings),
    ]) + "\n"
    (args.out / "conversion_check.md").write_text(text)
    print(summary)
    print(f"written: {args.out / 'conversion_check.md'}")
    return 0 if all(r.agrees for r in all_rows) else 1


def _summary(rows) -> str:
    import statistics

    lines = ["| model | runtime | frames agreeing | matched (min) | close pairs (min) | max box diff px | "
             "max score diff | min mask IoU | mean mask IoU (min) | eager ms | runtime ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        groups.setdefault((row.model, row.runtime), []).append(row)
    for (model, runtime), group in groups.items():
        lines.append(
            f"| {model} | {runtime} | {sum(r.agrees for r in group)}/{len(group)} | "
            f"{min(r.matched for r in group)}/100 | {min(r.close_pairs for r in group)} | "
            f"{max(r.max_box_diff for r in group):.2e} | {max(r.max_score_diff for r in group):.1e} | "
            f"{min(r.min_mask_iou for r in group):.4f} | {min(r.mean_mask_iou for r in group):.4f} | "
            f"{statistics.median(r.eager_ms for r in group):.0f} | "
            f"{statistics.median(r.runtime_ms for r in group):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
