"""Deterministic random weights for RF-DETR-Seg, by parameter name and shape alone.

The parity fixtures (tools/rfdetr_oracle/make_fixtures.py) fill rfdetr's own model with these
and this project's model regenerates them: both networks have the same parameter names and
shapes, so nothing but (seed, recipe) travels in a fixture. Each tensor has its own generator,
seeded from the seed and a CRC of its name, so the values do not depend on module order.

This file imports torch and the standard library only: the oracle loads it by path in rfdetr's
environment, without maskbench.

Scales keep a random network's outputs informative (checked by the oracle on every fixture):
layers ~ 1/sqrt(fan_in), norms ~ 1, layer scales ~ 0.5 so that the ViT's residual stream does not
drown its blocks, box deltas small enough for boxes to stay mostly inside the image, class
logits spread around -2 so that sigmoid scores spread over (0, 1) without saturating, a mask
bias of -15 against random mask logits that sit well above 0 (median mask area 1% to 99.7% of
the frame, by size and frame: nearly full masks for XL).
"""

from __future__ import annotations

import math
import zlib

import torch

RECIPE = "rfdetr-seg-random-v2"


def _scale(name: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) of the normal the tensor called ``name`` is drawn from."""
    leaf = name.rsplit(".", 1)[-1]
    if name.startswith("refpoint_embed"):
        return 0.0, 0.2
    if name.startswith("query_feat"):
        return 0.0, 1.0
    if leaf in ("cls_token", "mask_token", "position_embeddings"):
        return 0.0, 0.5
    if leaf == "lambda1":
        return 0.5, 0.1
    if len(shape) >= 2:  # linear, convolution and attention projection weights
        gain = 0.3 if "bbox_embed" in name and ".layers.2." in name else 1.0
        return 0.0, gain / math.sqrt(math.prod(shape[1:]))
    if leaf == "weight":  # 1-d: norms
        return 1.0, 0.1
    if "class_embed" in name:
        return -2.0, 0.5
    if name == "segmentation_head.bias":  # random mask logits sit well above 0
        return -15.0, 0.05
    if name.endswith("sampling_offsets.bias"):
        return 0.0, 1.0
    return 0.0, 0.05  # biases


def random_state_dict(shapes: dict[str, tuple[int, ...]], seed: int,
                      dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Tensors for the floating-point entries of ``shapes`` (name -> shape).

    Drawn in float64 and rounded to float32 (as trained checkpoints are): a float32 model then
    holds exactly the float64 model's weights, and loading them into either precision, in either
    order, gives the same network."""
    weights = {}
    for name, shape in shapes.items():
        generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        mean, std = _scale(name, tuple(shape))
        drawn = torch.randn(tuple(shape), generator=generator, dtype=torch.float64) * std + mean
        weights[name] = drawn.float().to(dtype)  # float32 values: the same weights in both precisions
    return weights


def fingerprint(state_dict: dict[str, torch.Tensor]) -> float:
    """Sum of |w| over all floating-point tensors, in float64: equal weights, equal sums."""
    return float(sum(v.double().abs().sum() for v in state_dict.values() if v.is_floating_point()))
