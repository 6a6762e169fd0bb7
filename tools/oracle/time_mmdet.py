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

import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tools" / "oracle"))
sys.path.insert(0, str(REPO / "tools"))

from make_fixtures import mmdet_model  # noqa: E402
from reference_timer import arguments, time_calls  # noqa: E402

from maskbench.zoo import get_spec  # noqa: E402


def main() -> int:
    args = arguments("the config's keep-ratio pipeline (default: stretch)")
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
        timed = time_calls(lambda: inference_detector(model, image), args)
    instances = timed.pop("result").pred_instances
    out = {
        "model": spec.name, "alias": spec.alias, "runtime": "mmdetection-eager", "precision": "fp32",
        "setup_s": setup_s, "detections": len(instances), "mask_shape": list(instances.masks.shape),
        "threads": torch.get_num_threads(), **timed,
        "versions": {"torch": torch.__version__, "mmcv": mmcv.__version__, "mmdet": mmdet.__version__},
    }
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
