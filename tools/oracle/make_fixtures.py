"""Generate MMDetection's own outputs for every zoo model, in float64, as parity fixtures.

Run in the oracle environment (tools/oracle/setup.sh), from the repository root:

    PYTHONPATH=src ../oracle-venv/bin/python tools/oracle/make_fixtures.py [--models r50 ...]

Why float64: random-weight networks are chaotic (1e-6 of input noise moves a random ResNeSt's
FPN output by 7e-2), and float32 convolutions round differently on every CPU kind (oneDNN picks
its kernels by instruction set), so float32 fixtures are reproduced bit for bit only on the CPU
that made them. In float64 the rounding that chaos amplifies starts at ~1e-16: one fixture set
gives the same verdict on every machine (docs/parity.md).

For each zoo model: maskbench builds its deterministic random weights in float64 (seed = the
model's index in the zoo; BatchNorm and head outputs calibrated, in float64, on the parity
frames themselves) and saves them as an MMDetection checkpoint; MMDetection 3.3 builds the model
from its official config, loads that checkpoint and runs its own ``inference_detector`` on the
parity frames in both preprocessing modes:
- in float64 (``model.double()``; the data preprocessor then normalises in double): the fixture;
- in float32 (the same weights rounded): not stored, only its agreement with the float64 run,
  i.e. MMDetection's own float32 spread, from which the test's float32 tolerance is taken.
Two ops do not run in double as MMDetection ships them, so, for the float64 run only:
- MMCV's CPU NMS takes float32 only: it is replaced by a float64 transcription of its greedy
  kernel (same unstable descending sort, same IoU arithmetic, ``>`` threshold), checked against
  MMCV's own kernel in float32 on the same inputs before any model runs;
- ``_do_paste_mask`` samples float32 masks with a grid built from the boxes' dtype, which
  ``grid_sample`` refuses when the boxes are double: the boxes are handed to it as float32,
  i.e. the pasting MMDetection does in float32 (maskbench pastes float32 the same way).
RTMDet-Ins: MMDetection's own masks in keep-ratio mode; in stretch mode its masks have the
wrong shape (``rtmdet_masks_axes_fixed``), so there the masks are its stride-8 logits resized
with the axes the right way round (what maskbench computes, docs/parity.md).
Saved per model (small, committed): the float64 boxes, scores, labels, the first 28x28 mask
probabilities (Mask R-CNN), the pasted masks as COCO RLE, the preprocessing meta, a fingerprint of the
weights, and the float32 spread. The parity test regenerates the same weights with maskbench.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib
import json
import platform
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "parity" / "fixtures"
PROBS_KEPT = 20


def modes(spec) -> dict[str, dict]:
    """Each preprocessing mode as the Resize step of the model's test pipeline."""
    fmt = spec.input_format
    return {"stretch": dict(scale=fmt.stretch_size, keep_ratio=False),
            "keep_ratio": dict(scale=fmt.keep_ratio_scale, keep_ratio=True)}


def nms_float64(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """MMCV 2.1's ``nms_cpu`` (mmcv/ops/csrc/pytorch/cpu/nms.cpp) transcribed for any float dtype.

    Same order (``scores.sort(0, descending=True)``, ATen's unstable sort, as the kernel calls
    it), same arithmetic per pair (``w = max(0, min(x2) - max(x1) + offset)``,
    ``inter / (area_i + area_j - inter)``), same rule (suppress when ``> threshold``). The inner
    loop over later boxes is vectorised: suppressing an already suppressed box changes nothing.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    x1, y1, x2, y2 = (boxes[:, k].contiguous() for k in range(4))
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = scores.sort(0, descending=True)[1]
    threshold = torch.tensor(iou_threshold, dtype=boxes.dtype)  # the kernel compares in its own precision
    select = torch.ones(boxes.shape[0], dtype=torch.bool)
    zero = torch.zeros((), dtype=boxes.dtype)
    for position in range(boxes.shape[0]):
        if not select[position]:
            continue
        i, later = order[position], order[position + 1:]
        w = torch.maximum(zero, torch.minimum(x2[i], x2[later]) - torch.maximum(x1[i], x1[later]) + offset)
        h = torch.maximum(zero, torch.minimum(y2[i], y2[later]) - torch.maximum(y1[i], y1[later]) + offset)
        inter = w * h
        overlap = inter / (areas[i] + areas[later] - inter)
        select[position + 1:] &= ~(overlap > threshold)
    return order[select]


class _ExtWithFloat64Nms:
    """MMCV's compiled extension, with ``nms`` taking float64 through :func:`nms_float64`."""

    def __init__(self, ext) -> None:
        self._ext = ext

    def __getattr__(self, name):
        return getattr(self._ext, name)

    def nms(self, boxes, scores, iou_threshold, offset):
        if boxes.dtype == torch.float64:
            return nms_float64(boxes, scores, iou_threshold, offset)
        return self._ext.nms(boxes, scores, iou_threshold=iou_threshold, offset=offset)


def check_nms_transcription(trials: int = 300) -> dict:
    """The transcription run in float32 must keep exactly what MMCV's kernel keeps."""
    mmcv_nms = _mmcv_nms_module()

    generator = torch.Generator().manual_seed(0)
    for trial in range(trials):
        n = int(torch.randint(1, 400, (1,), generator=generator))
        xy = torch.rand(n, 2, generator=generator) * 200
        wh = torch.rand(n, 2, generator=generator) * 60 * (trial % 3 != 0)  # some zero-size boxes
        boxes = torch.cat([xy, xy + wh], dim=1).float()
        scores = ((torch.rand(n, generator=generator) * 8).floor() / 8 if trial % 2
                  else torch.rand(n, generator=generator))
        if trial % 5 == 0:
            boxes[n // 2:] = boxes[: n - n // 2].clone()  # exact duplicates
        threshold = float(torch.rand(1, generator=generator)) * 0.9 + 0.05
        offset = trial % 4 == 3
        ours = nms_float64(boxes, scores.float(), np.float32(threshold), int(offset))
        theirs = mmcv_nms.ext_module.nms(boxes, scores.float(), iou_threshold=threshold, offset=int(offset))
        if not torch.equal(ours, theirs):
            raise SystemExit(f"nms_float64 differs from MMCV's nms on trial {trial}: {ours} vs {theirs}")
    return {"trials": trials, "identical": True}


def _mmcv_nms_module():
    """The module ``mmcv.ops.nms`` (the package attribute of that name is the function)."""
    return importlib.import_module("mmcv.ops.nms")


@contextmanager
def float64_ops():
    mmcv_nms = _mmcv_nms_module()
    from mmdet.models.roi_heads.mask_heads import fcn_mask_head

    ext, paste = mmcv_nms.ext_module, fcn_mask_head._do_paste_mask
    mmcv_nms.ext_module = _ExtWithFloat64Nms(ext)
    fcn_mask_head._do_paste_mask = lambda masks, boxes, *args, **kw: paste(masks, boxes.float(), *args, **kw)
    try:
        yield
    finally:
        mmcv_nms.ext_module, fcn_mask_head._do_paste_mask = ext, paste


def mmdet_model(spec, checkpoint: Path, mode: str, dtype: torch.dtype):
    import mmdet
    from mmdet.apis import init_detector
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    config = Config.fromfile(str(Path(mmdet.__file__).parent / ".mim" / "configs" / spec.config_path))
    pipeline = []
    for step in config.test_dataloader.dataset.pipeline:
        if step["type"] == "LoadAnnotations":
            continue  # no ground truth at inference
        if step["type"] == "Resize":
            step = dict(step, **modes(spec)[mode])
        pipeline.append(step)
    config.test_dataloader.dataset.pipeline = pipeline
    model = init_detector(config, str(checkpoint), device="cpu")  # float32: the weights rounded
    if dtype == torch.float64:
        model.double()  # data preprocessor included: its mean/std buffers make it normalise in double
        load_checkpoint(model, str(checkpoint), map_location="cpu")  # the double values, unrounded
    return model


def rtmdet_masks_axes_fixed(logits: torch.Tensor, metainfo: dict, threshold: float = 0.5) -> np.ndarray:
    """``RTMDetInsHead._bbox_mask_post_process``'s masks with the scale factors taken in (h, w)
    order: MMDetection uses (w, h) as (h, w), which only a non-uniform stretch exposes (a
    1600x900 frame stretched to 640x640 gets 900x900 masks). Everything else as MMDetection."""
    import math

    import torch.nn.functional as F

    upsampled = F.interpolate(logits.unsqueeze(0), scale_factor=8, mode="bilinear")
    w_scale, h_scale = metainfo["scale_factor"]
    ori_h, ori_w = metainfo["ori_shape"][:2]
    size = [math.ceil(upsampled.shape[-2] * (1 / h_scale)), math.ceil(upsampled.shape[-1] * (1 / w_scale))]
    resized = F.interpolate(upsampled, size=size, mode="bilinear", align_corners=False)[..., :ori_h, :ori_w]
    return (resized.sigmoid().squeeze(0) > threshold).numpy()


def run_mmdet(model, image_path: Path, mode: str) -> dict:
    from mmdet.apis import inference_detector
    from pycocotools import mask as mask_utils

    captured = {}
    rtmdet = not hasattr(model, "roi_head")
    if rtmdet:  # the stride-8 mask logits of the kept instances
        predict = model.bbox_head._mask_predict_by_feat_single

        def keep_logits(*args, **kwargs):
            captured["logits"] = predict(*args, **kwargs)
            return captured["logits"]

        model.bbox_head._mask_predict_by_feat_single = keep_logits
        hook = None
    else:
        hook = model.roi_head.mask_head.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    hook_in = model.data_preprocessor.register_forward_hook(lambda m, i, o: captured.__setitem__("inputs", o))
    try:
        result = inference_detector(model, str(image_path))
    finally:
        if hook is not None:
            hook.remove()
        else:
            del model.bbox_head._mask_predict_by_feat_single
        hook_in.remove()
    inst = result.pred_instances
    labels = inst.labels
    logits = captured["logits"]
    if rtmdet:
        probs = None
        masks = inst.masks.numpy() if mode == "keep_ratio" else rtmdet_masks_axes_fixed(logits, result.metainfo)
    else:
        probs = logits[torch.arange(labels.shape[0]), labels].sigmoid() if labels.numel() else logits[:, 0]
        masks = inst.masks.numpy()
    rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
    inputs = captured["inputs"]["inputs"]
    return {
        "dtype": str(inputs.dtype).removeprefix("torch."),
        "boxes": inst.bboxes.double().numpy().tolist(),
        "scores": inst.scores.double().numpy().tolist(),
        "labels": inst.labels.numpy().astype(np.int64).tolist(),
        # Mask R-CNN: the first PROBS_KEPT detections' 28x28 probabilities, float32 base64:
        # enough to diagnose a mask-head difference without committing megabytes.
        "mask_probs_f32": None if probs is None else
        base64.b64encode(probs[:PROBS_KEPT].float().numpy().tobytes()).decode(),
        "masks_rle": [{"size": r["size"], "counts": r["counts"].decode()} for r in rles],
        "img_shape": list(result.metainfo["img_shape"]),
        "scale_factor": list(result.metainfo["scale_factor"]),
        "input_shape": list(inputs.shape),
        "input_sum": float(inputs.double().sum()),
        "input_abs_sum": float(inputs.double().abs().sum()),
    }


def main() -> None:
    from maskbench.data.coco_classes import COCO_CLASSES
    from maskbench.verify.compare import compare_detections
    sys.path.insert(0, str(REPO / "tests"))
    from parity.parity import FRAMES, frame_path, parity_model, reference_detections, weights_fingerprint

    from maskbench.zoo import MASK_RCNN, MODELS, RTMDET_INS

    parser = argparse.ArgumentParser()  # MMDetection's families (RF-DETR-Seg: tools/rfdetr_oracle)
    parser.add_argument("--models", nargs="*", default=[m.alias for m in MODELS if m.family in (MASK_RCNN, RTMDET_INS)])
    args = parser.parse_args()
    torch.set_num_threads(2)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    import mmcv  # noqa: E401
    import mmdet

    nms_check = check_nms_transcription()
    print("nms_float64 == MMCV nms in float32:", nms_check, flush=True)
    for seed, spec in enumerate(MODELS):
        if spec.alias not in args.models:
            continue
        loaded = parity_model(spec.alias, seed)
        state = loaded.model.state_dict()
        record = {"format": 2, "model": spec.name, "seed": seed, "dtype": "float64",
                  "weights_fingerprint": weights_fingerprint(state),
                  "versions": {"torch": torch.__version__, "mmcv": mmcv.__version__, "mmdet": mmdet.__version__},
                  "made_on": {"cpu": platform.processor() or platform.machine(),
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()},
                  "nms_transcription_check": nms_check, "runs": {}, "float32_spread": {}}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / f"{spec.alias}.pth"
            torch.save({"meta": {"CLASSES": COCO_CLASSES}, "state_dict": state}, checkpoint)
            for mode in modes(spec):
                model32 = mmdet_model(spec, checkpoint, mode, torch.float32)
                model64 = mmdet_model(spec, checkpoint, mode, torch.float64)
                for frame in FRAMES:
                    name = f"{frame}/{mode}"
                    with float64_ops():
                        run64 = run_mmdet(model64, frame_path(frame), mode)
                    run32 = run_mmdet(model32, frame_path(frame), mode)
                    spread = compare_detections(reference_detections(run64), reference_detections(run32))
                    record["runs"][name] = run64
                    record["float32_spread"][name] = spread.as_dict()
                    print(spec.alias, name, len(run64["scores"]), "float32 vs float64:", spread, flush=True)
        with gzip.open(FIXTURES / f"{spec.alias}.json.gz", "wt") as f:
            json.dump(record, f)


if __name__ == "__main__":
    main()
