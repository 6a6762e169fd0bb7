"""Time MMDetection 3.3 eager on one frame: the reference that maskbench's CPU speed is judged by.

Run in the oracle environment (tools/oracle/setup.sh) by tools/mmdet_vs_maskbench.py, one
process per model:

    PYTHONPATH=src ../oracle-venv/bin/python tools/oracle/time_mmdet.py --model r101 \
        --checkpoint W.pth --image FRAME.jpg --out RESULT.json [--threads 2 --warmup 1 --repeat 3]

What is timed is MMDetection's own API call ``inference_detector(model, image)`` on the decoded
frame (a BGR array, as MMDetection reads it; decoding is outside, as in maskbench's end-to-end
figure): its test pipeline (resize to the model's static size without keeping the ratio, as the
study's static engines, or with ``--keep-ratio`` its config's own resize and pad), normalise,
pad, the network, and the masks at the original 1600x900 size.
Peak RSS is the whole process (model build + every call) and, after a reset following the
warm-up, the steady state while timing. With ``--reply-fd`` (tools/mmdet_vs_maskbench.py's
interleaved run) each timed call waits for its turn (maskbench.benchmark.control).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tools" / "oracle"))

from make_fixtures import mmdet_model  # noqa: E402

from maskbench.benchmark import memory  # noqa: E402
from maskbench.benchmark.control import control_from, turns  # noqa: E402
from maskbench.zoo import get_spec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-ratio", action="store_true", help="the config's keep-ratio pipeline (default: stretch)")
    parser.add_argument("--reply-fd", type=int, default=None,
                        help="interleaved: one timed call per 'time' command (maskbench.benchmark.control)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import mmcv
    import mmdet
    from mmdet.apis import inference_detector

    spec = get_spec(args.model)
    t0 = time.perf_counter()
    model = mmdet_model(spec, args.checkpoint, "keep_ratio" if args.keep_ratio else "stretch", torch.float32)
    setup_s = time.perf_counter() - t0
    image = mmcv.imread(str(args.image))  # BGR uint8, what MMDetection's LoadImageFromFile gives
    with torch.no_grad():
        for _ in range(max(1, args.warmup)):
            inference_detector(model, image)
        whole_peak = memory.peak_rss_mb()
        memory.reset_peak_rss()
        seconds, detections = [], None
        for _ in turns(control_from(args.reply_fd), args.repeat):  # alone: at once; interleaved: on each turn
            start = time.perf_counter()
            result = inference_detector(model, image)
            seconds.append(time.perf_counter() - start)
            detections = len(result.pred_instances)
            masks = result.pred_instances.masks
    out = {
        "model": spec.name, "alias": spec.alias, "runtime": "mmdetection-eager", "precision": "fp32",
        "seconds": seconds, "setup_s": setup_s, "detections": detections,
        "mask_shape": list(masks.shape), "threads": torch.get_num_threads(),
        "peak_rss_mb": max(whole_peak, memory.peak_rss_mb()), "steady_rss_mb": memory.peak_rss_mb(),
        "versions": {"torch": torch.__version__, "mmcv": mmcv.__version__, "mmdet": mmdet.__version__},
    }
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
