"""Generate MMDetection's own outputs for every zoo model, as parity fixtures.

Run in the oracle environment (tools/oracle/setup.sh), from the repository root:

    PYTHONPATH=src ../oracle-venv/bin/python tools/oracle/make_fixtures.py [--models r50 ...]

For each zoo model: maskbench builds its deterministic random weights (seed = the model's index
in the zoo, BatchNorm and head outputs calibrated on the parity frames themselves), saves them as
an MMDetection checkpoint, MMDetection 3.3 builds the model from its official config and loads
that checkpoint, and MMDetection's own ``inference_detector`` runs on the parity frames in both
preprocessing modes. Saved per model (small, committed): boxes, scores, labels, 28x28 mask
probabilities, the pasted masks as COCO RLE, the preprocessing meta, and a fingerprint of the
weights. The parity test regenerates the same weights with maskbench (nothing large is stored).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
# one set per instruction set (oneDNN's kernels decide the last bits of every convolution)
FIXTURES = REPO / "tests" / "parity" / "fixtures" / torch.backends.cpu.get_cpu_capability()
PROBS_KEPT = 20
MODES = {"stretch": dict(scale=(1344, 800), keep_ratio=False), "keep_ratio": dict(scale=(1333, 800), keep_ratio=True)}


def mmdet_model(spec, checkpoint: Path, mode: str):
    from mmdet.apis import init_detector
    from mmengine.config import Config
    import mmdet

    config = Config.fromfile(str(Path(mmdet.__file__).parent / ".mim" / "configs" / spec.config_path))
    pipeline = []
    for step in config.test_dataloader.dataset.pipeline:
        if step["type"] == "LoadAnnotations":
            continue  # no ground truth at inference
        if step["type"] == "Resize":
            step = dict(step, **MODES[mode])
        pipeline.append(step)
    config.test_dataloader.dataset.pipeline = pipeline
    return init_detector(config, str(checkpoint), device="cpu")


def run_mmdet(model, image_path: Path) -> dict:
    from mmdet.apis import inference_detector
    from pycocotools import mask as mask_utils

    captured = {}
    hook = model.roi_head.mask_head.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    hook_in = model.data_preprocessor.register_forward_hook(lambda m, i, o: captured.__setitem__("inputs", o))
    try:
        result = inference_detector(model, str(image_path))
    finally:
        hook.remove()
        hook_in.remove()
    inst = result.pred_instances
    labels = inst.labels
    logits = captured["logits"]
    probs = logits[torch.arange(labels.shape[0]), labels].sigmoid() if labels.numel() else logits[:, 0]
    masks = inst.masks.numpy().astype(np.uint8)
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    inputs = captured["inputs"]["inputs"]
    return {
        "boxes": inst.bboxes.numpy().astype(np.float32).tolist(),
        "scores": inst.scores.numpy().astype(np.float32).tolist(),
        "labels": inst.labels.numpy().astype(np.int64).tolist(),
        # The first PROBS_KEPT detections' 28x28 probabilities, float16 base64: enough to
        # diagnose a mask-head difference without committing megabytes.
        "mask_probs_f16": base64.b64encode(probs[:PROBS_KEPT].numpy().astype(np.float16).tobytes()).decode(),
        "masks_rle": [{"size": r["size"], "counts": r["counts"].decode()} for r in rles],
        "img_shape": list(result.metainfo["img_shape"]),
        "scale_factor": list(result.metainfo["scale_factor"]),
        "input_shape": list(inputs.shape),
        "input_sum": float(inputs.double().sum()),
        "input_abs_sum": float(inputs.double().abs().sum()),
    }


def main() -> None:
    from maskbench.data.coco_classes import COCO_CLASSES
    sys.path.insert(0, str(REPO / "tests"))
    from parity.parity import FRAMES, frame_path, parity_model, weights_fingerprint
    from maskbench.zoo import MODELS

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=[m.alias for m in MODELS])
    args = parser.parse_args()
    torch.set_num_threads(2)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    import mmcv, mmdet  # noqa: E401

    for seed, spec in enumerate(MODELS):
        if spec.alias not in args.models:
            continue
        loaded = parity_model(spec.alias, seed)
        state = loaded.model.state_dict()
        record = {"model": spec.name, "seed": seed, "weights_fingerprint": weights_fingerprint(state),
                  "versions": {"torch": torch.__version__, "mmcv": mmcv.__version__, "mmdet": mmdet.__version__},
                  # oneDNN's kernels (and so the last bits of every convolution) follow the ISA
                  "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                  "runs": {}}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / f"{spec.alias}.pth"
            torch.save({"meta": {"CLASSES": COCO_CLASSES}, "state_dict": state}, checkpoint)
            for mode in MODES:
                model = mmdet_model(spec, checkpoint, mode)
                for frame in FRAMES:
                    record["runs"][f"{frame}/{mode}"] = run_mmdet(model, frame_path(frame))
                    print(spec.alias, frame, mode, len(record["runs"][f"{frame}/{mode}"]["scores"]), flush=True)
        with gzip.open(FIXTURES / f"{spec.alias}.json.gz", "wt") as f:
            json.dump(record, f)


if __name__ == "__main__":
    main()
