"""maskbench's RTMDet-Ins against MMDetection 3.3's, stage by stage, in float64, same weights.

Run in the oracle environment (tools/oracle/setup.sh), from the repository root:

    PYTHONPATH=src ../oracle-venv/bin/python tools/oracle/check_rtmdet.py [--sizes tiny s m l x]

For each size: MMDetection builds ``rtmdet-ins_{size}_*_coco.py``; maskbench builds the same size,
fills it with its deterministic random weights (``randomize_``) and then gives every BatchNorm
seeded non-trivial statistics and affine parameters (so that the BNs matter), and the class
logits a spread that leaves scores unsaturated; MMDetection loads that state dict with
``strict=True``. Both run in float64 on the same random normalised inputs (a square-ish and a
non-square padded input whose resized image is smaller than the pad). Printed: the largest
absolute differences of the neck features, the head outputs, and the final detections before
mask upsampling (boxes, scores, labels, per-instance mask logits at stride 8): the mask logits
are taken from MMDetection's own ``_mask_predict_by_feat_single`` inside ``predict_by_feat``.

MMCV's CPU NMS refuses float64: ``make_fixtures.float64_ops`` swaps in its float64 transcription
of MMCV's greedy kernel (checked there against the kernel in float32).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import check_nms_transcription, float64_ops  # noqa: E402

from maskbench.models.factory import build_model  # noqa: E402
from maskbench.models.random_init import randomize_  # noqa: E402
from maskbench.models.rtmdet.model import RTMDetIns  # noqa: E402
from maskbench.zoo import get_spec  # noqa: E402

CONFIGS = {
    "tiny": "rtmdet-ins_tiny_8xb32-300e_coco.py",
    "s": "rtmdet-ins_s_8xb32-300e_coco.py",
    "m": "rtmdet-ins_m_8xb32-300e_coco.py",
    "l": "rtmdet-ins_l_8xb32-300e_coco.py",
    "x": "rtmdet-ins_x_8xb16-300e_coco.py",
}
#: (padded input (H, W), resized image (h, w) inside it)
INPUTS = (((256, 320), (256, 300)), ((192, 288), (170, 288)))
CLASS_LOGITS = (-5.0, 1.5)
#: (mean, std) of the distance logits before ``relu(.) * stride``: boxes of a few strides that
#: overlap, so NMS suppresses and the clamping to the image matters.
DISTANCE_LOGITS = (1.5, 1.5)


def mmdet_model(size: str) -> nn.Module:
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()
    config = Config.fromfile(str(Path(mmdet.__file__).parent / ".mim" / "configs" / "rtmdet" / CONFIGS[size]))
    return MODELS.build(config.model).eval()


@torch.no_grad()
def our_model(size: str, seed: int) -> RTMDetIns:
    model = randomize_(build_model(get_spec(f"rtmdet-ins-{'t' if size == 'tiny' else size}")), seed).eval()
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.double()


@torch.no_grad()
def spread_head_outputs(model: RTMDetIns, images: torch.Tensor) -> None:
    """Standardise each level's ``rtm_cls`` logits to ``CLASS_LOGITS`` (mean, std): a few percent
    of the scores pass 0.05 (more than ``nms_pre`` on the finest level), none saturate at 1.0
    where ties would decide the order; and ``rtm_reg``'s logits to ``DISTANCE_LOGITS``."""
    features = model.extract_features(images)
    head = model.bbox_head
    cls_feats = []
    for level, x in enumerate(features):
        for layer in head.cls_convs[level]:
            x = layer(x)
        cls_feats.append(x)
    for convs, (mean, std) in ((head.rtm_cls, CLASS_LOGITS), (head.rtm_reg, DISTANCE_LOGITS)):
        for conv, x in zip(convs, cls_feats):
            logits = conv(x)
            scale = std / float(logits.std())
            conv.weight.mul_(scale)
            conv.bias.copy_((conv.bias - logits.mean()) * scale + mean)


def max_diff(a, b) -> float:
    if isinstance(a, (list, tuple)):
        return max((max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    return float((a - b).abs().max()) if a.numel() else 0.0


def scale_of(a) -> float:
    if isinstance(a, (list, tuple)):
        return max(scale_of(x) for x in a)
    return float(a.abs().max()) if a.numel() else 0.0


def report(stage: str, ours, theirs) -> None:
    diff, scale = max_diff(ours, theirs), scale_of(theirs)
    print(f"    {stage:<28} max|diff| {diff:.3e}   max|value| {scale:.3e}   relative {diff / max(scale, 1e-300):.1e}")


@torch.no_grad()
def check(size: str, seed: int, dtype: torch.dtype) -> None:
    theirs = mmdet_model(size).to(dtype)
    ours = our_model(size, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    calibration = torch.randn(1, 3, *INPUTS[0][0], generator=generator, dtype=torch.float64)
    spread_head_outputs(ours, calibration)
    ours.to(dtype)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    print(f"{size}: MMDetection parameters {sum(p.numel() for p in theirs.parameters()):,}, "
          f"maskbench {sum(p.numel() for p in ours.parameters()):,}")
    head = theirs.bbox_head
    captured: dict[str, torch.Tensor] = {}
    original = head._mask_predict_by_feat_single

    def capture(mask_feat, kernels, priors):
        logits = original(mask_feat, kernels, priors)
        captured.update(kernels=kernels, priors=priors, logits=logits)
        return logits

    head._mask_predict_by_feat_single = capture
    for (pad_h, pad_w), img_shape in INPUTS:
        images = torch.randn(1, 3, pad_h, pad_w, generator=generator, dtype=torch.float64).to(dtype)
        print(f"  input 1x3x{pad_h}x{pad_w}, img_shape {img_shape}")
        our_feats, their_feats = ours.extract_features(images), theirs.extract_feat(images)
        report("neck features", our_feats, their_feats)
        our_head, their_head = ours.head_outputs(our_feats), head(their_feats)
        for name, a, b in zip(("cls_scores", "bbox_preds", "kernel_preds", "mask_feat"), our_head, their_head):
            report(f"head {name}", a, b)
        above = [int((c.sigmoid() > ours.detection_config.score_thr).sum()) for c in our_head[0]]
        print(f"    (prior, class) scores above score_thr per level: {above}")
        boxes, scores, labels, kernels, priors = ours.select(*our_head[:3], img_shape, 0)
        our_masks = ours.mask_logits(our_head[3][0], kernels, priors)
        meta = dict(img_shape=img_shape, ori_shape=img_shape, pad_shape=(pad_h, pad_w),
                    batch_input_shape=(pad_h, pad_w), scale_factor=(1.0, 1.0))
        captured.clear()
        with float64_ops():  # (float32 boxes go to MMCV's own kernel)
            result = head.predict_by_feat(*their_head, batch_img_metas=[meta], rescale=False)[0]
        same = labels.shape == result.labels.shape and torch.equal(labels, result.labels)
        print(f"    detections                   maskbench {labels.numel()}, MMDetection {result.labels.numel()}, "
              f"labels and order identical: {same}")
        if not same:
            continue
        report("boxes", boxes, result.bboxes)
        report("scores", scores, result.scores)
        report("priors", priors, captured["priors"])
        report("kernels", kernels, captured["kernels"])
        report("mask logits (stride 8)", our_masks, captured["logits"])
        report("mask logits, their kernels", ours.mask_logits(their_head[3][0], captured["kernels"],
                                                              captured["priors"]), captured["logits"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="float32: both sides in float32 (weights made in float64, then rounded)")
    args = parser.parse_args()
    print("NMS transcription vs MMCV's kernel:", check_nms_transcription(100))
    for size in args.sizes:
        check(size, args.seed, getattr(torch, args.dtype))


if __name__ == "__main__":
    main()
