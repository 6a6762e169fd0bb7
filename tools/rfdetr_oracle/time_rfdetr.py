"""Time rfdetr 1.11.2's own ``predict`` on one frame: the reference RF-DETR-Seg's CPU speed is
judged by. Run in rfdetr's environment (docs/rfdetr.md) by tools/mmdet_vs_maskbench.py, one
process per model:

    PYTHONPATH=src /work/rfdetr-venv/bin/python tools/rfdetr_oracle/time_rfdetr.py --model rfdetr-seg-n \
        --checkpoint W.pth --image FRAME.jpg --out RESULT.json [--threads 2 --warmup 1 --repeat 3]

rfdetr builds the size itself (``pretrain_weights=None``: nothing downloaded) and loads the
weights maskbench saved (``{"state_dict": ...}``, read without pickled code). What is timed is
``model.predict(frame, threshold=0.0)`` on the decoded RGB frame (Pillow, as rfdetr decodes a
path; decoding is outside, as in maskbench's end-to-end figure): its /255, resize and
normalisation, the network, the top ``num_select`` pairs and every mask resized to the original
frame, i.e. all detections as maskbench keeps them (rfdetr's default ``threshold=0.5`` would
drop those below it before their masks). With ``--reply-fd`` each timed call waits for its turn
(maskbench.benchmark.control).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tools"))

from reference_timer import arguments, time_calls  # noqa: E402

from maskbench.zoo import get_spec  # noqa: E402  (plain data)


def main() -> int:
    args = arguments("refused: RF-DETR-Seg has its square input only")
    if args.keep_ratio:
        sys.exit("RF-DETR-Seg has no keep-ratio mode")
    torch.set_num_threads(args.threads)
    import rfdetr

    spec = get_spec(args.model)
    t0 = time.perf_counter()
    wrapper = getattr(rfdetr, spec.heads.rfdetr_class)(pretrain_weights=None, device="cpu")
    net = wrapper.model.model
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert set(missing) <= {"_kp_active_mask"} and not unexpected, (missing, unexpected)
    net.eval()
    setup_s = time.perf_counter() - t0
    image = np.array(Image.open(args.image).convert("RGB"))
    timed = time_calls(lambda: wrapper.predict(image, threshold=0.0), args)
    result = timed.pop("result")
    out = {
        "model": spec.name, "alias": spec.alias, "runtime": "rfdetr-eager", "precision": "fp32",
        "setup_s": setup_s, "detections": len(result),
        "mask_shape": list(result.mask.shape) if result.mask is not None else None,
        "threads": torch.get_num_threads(), **timed,
        "versions": {"torch": torch.__version__, "rfdetr": version("rfdetr")},
    }
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
