"""What a reference implementation's timer shares (MMDetection: tools/oracle/time_mmdet.py,
rfdetr: tools/rfdetr_oracle/time_rfdetr.py): its command line and the timed calls, each on its
turn when tools/mmdet_vs_maskbench.py interleaves it with maskbench's runtimes. Runs in the
reference's own environment: it imports only maskbench's standard-library modules."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from maskbench.benchmark import memory  # noqa: E402  (standard library only)
from maskbench.benchmark.control import control_from, turns  # noqa: E402


def arguments(keep_ratio_help: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-ratio", action="store_true", help=keep_ratio_help)
    parser.add_argument("--reply-fd", type=int, default=None,
                        help="interleaved: one timed call per 'time' command (maskbench.benchmark.control)")
    return parser.parse_args()


def time_calls(call: Callable[[], object], args: argparse.Namespace) -> dict:
    """``call()`` after ``--warmup`` untimed calls, ``--repeat`` times (interleaved: on each
    turn); the seconds, the last result, and the whole process's and the steady peak RSS."""
    for _ in range(max(1, args.warmup)):
        call()
    whole_peak = memory.peak_rss_mb()
    memory.reset_peak_rss()
    seconds, result = [], None
    for _ in turns(control_from(args.reply_fd), args.repeat):  # alone: at once; interleaved: on each turn
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "result": result, "peak_rss_mb": max(whole_peak, memory.peak_rss_mb()),
            "steady_rss_mb": memory.peak_rss_mb()}
