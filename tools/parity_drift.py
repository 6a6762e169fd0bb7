"""Show that the parity test fails on real bugs: inject one, run both tiers on one model.

    .venv/bin/python tools/parity_drift.py BUG [MODEL]
        (BUG: fpn-fp16, input-fp16, finest-scale for Mask R-CNN; nms-iou for RTMDet-Ins)

- ``fpn-fp16``: FPN outputs rounded through fp16 in the float32 path only (an autocast slip):
  a float32-only bug, which only the float32 tier can see;
- ``input-fp16``: the float32 input tensor rounded through fp16;
- ``finest-scale``: ``RoIExtractor``'s ``finest_scale`` 56 -> 57, one changed constant;
- ``nms-iou``: RTMDet-Ins' NMS IoU threshold 0.6 -> 0.61, one changed constant.
Each tier prints PASSED or FAILED with the first line of its assertion.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def inject(bug: str) -> None:
    if bug == "fpn-fp16":
        from maskbench.models.mask_rcnn.model import MaskRCNN

        extract = MaskRCNN.extract_features
        MaskRCNN.extract_features = lambda self, x: [  # type: ignore[method-assign]
            f.half().to(f.dtype) if f.dtype == torch.float32 else f for f in extract(self, x)]
    elif bug == "input-fp16":
        import maskbench.pipeline.preprocess as pre

        normalise = pre.normalise_into_padded

        def rounded(resized, mean, std, hw, dtype=np.float32, pad_value=None):
            out = normalise(resized, mean, std, hw, dtype, pad_value)
            return out.astype(np.float16).astype(np.float32) if dtype == np.float32 else out

        pre.normalise_into_padded = rounded
    elif bug == "finest-scale":
        from maskbench.models.mask_rcnn import roi_heads

        init = roi_heads.RoIExtractor.__init__
        roi_heads.RoIExtractor.__init__ = (  # type: ignore[method-assign]
            lambda self, output_size, strides=(4, 8, 16, 32), finest_scale=56: init(self, output_size, strides, 57))
    elif bug == "nms-iou":
        import functools

        from maskbench.models import factory

        factory.RTMDetTestConfig = functools.partial(factory.RTMDetTestConfig, iou_threshold=0.61)  # type: ignore[misc]
    else:
        raise SystemExit(__doc__)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    bug = sys.argv[1]
    alias = sys.argv[2] if len(sys.argv) > 2 else ("rtmdet-ins-t" if bug == "nms-iou" else "r50")
    inject(bug)
    from parity import test_parity_mmdet as tiers

    for name in ("float64", "float32"):
        try:
            tiers.test_parity(alias, name)
            print(bug, alias, name, "PASSED")
        except AssertionError as err:
            print(bug, alias, name, "FAILED:", str(err).splitlines()[0][:300])


if __name__ == "__main__":
    main()
