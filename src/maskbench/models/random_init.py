"""Deterministic random weights that make a detector *behave* like a trained one.

Why: no trained weights can be downloaded in some places (CI, air-gapped robots), yet latency
and memory depend on what the network does, not on what it knows. Naive random weights give
non-finite activations in deep ResNets and zero detections, so the mask head never runs; a
0.0 score threshold instead sends ~90,000 boxes to NMS. Both time the wrong work.

Two steps:
1. ``randomize_``: every tensor drawn from its own ``numpy.random.RandomState`` seeded by the
   model seed and the tensor's name, so the same weights come back on any machine and can be
   regenerated (e.g. by a reference implementation) without storing them.
2. each family's calibration (:mod:`maskbench.models.mask_rcnn.random_weights`,
   :mod:`maskbench.models.rtmdet.random_weights`): on real
   frames, set each BatchNorm's statistics from its actual input (eval mode is kept; the
   statistics are simply measured), then standardise each output channel of the heads' last
   layers (RPN objectness and deltas, class logits, box deltas, mask logits) over real
   anchors/RoIs to a target mean and spread. Measured: a single global scale on the
   class logits still lets one class win every RoI at score 1.0 on some frames; per-channel
   standardisation gives spread scores, many classes and partial masks.
"""

from __future__ import annotations

import zlib
from typing import cast

import numpy as np
import torch
from torch import nn


def tensor_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**32)


def _normal(seed: int, name: str, shape: torch.Size, std: float) -> torch.Tensor:
    values = np.random.RandomState(tensor_seed(seed, name)).standard_normal(tuple(shape)) * std
    return torch.from_numpy(values.astype(np.float32))


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every floating parameter deterministically: He-normal for convs and linears,
    identity for norms, N(0, 0.02) for anything else (position biases, layer scales)."""
    done: set[str] = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = module.weight[0].numel() if not isinstance(module, nn.ConvTranspose2d) else module.weight.shape[0]
            module.weight.copy_(_normal(seed, prefix + "weight", module.weight.shape, (2.0 / fan_in) ** 0.5))
            done.add(prefix + "weight")
            if module.bias is not None:
                module.bias.zero_()
                done.add(prefix + "bias")
        elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)) or _is_norm(module):
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()
                done.update({prefix + "weight", prefix + "bias"})
            if isinstance(module, nn.BatchNorm2d):  # (track_running_stats: the buffers exist)
                cast(torch.Tensor, module.running_mean).zero_()
                cast(torch.Tensor, module.running_var).fill_(1.0)
    for name, param in model.named_parameters():
        if name not in done and param.is_floating_point():
            param.copy_(_normal(seed, name, param.shape, 0.02) + (1.0 if name.endswith("gamma") else 0.0))
    return model


def _is_norm(module: nn.Module) -> bool:
    """Custom norm layers (e.g. a channels-first LayerNorm) are recognised by name."""
    return "norm" in type(module).__name__.lower() and hasattr(module, "weight") and module.weight is not None \
        and cast(torch.Tensor, module.weight).dim() == 1


class _BatchNormFromInput:
    """Forward pre-hook: before a BatchNorm runs, set its statistics from this very input."""

    def __call__(self, module: nn.BatchNorm2d, inputs):
        x = inputs[0].detach()
        per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)
        mean = per_channel.mean(dim=1)
        if per_channel.shape[1] > 1:
            var = per_channel.var(dim=1, unbiased=False)
        else:
            # One sample per channel (e.g. ResNeSt's attention BN after global pooling on a
            # single image): use the spread across channels instead of a zero variance.
            var = torch.full_like(mean, float(per_channel.var()) if per_channel.numel() > 1 else 1.0)
        cast(torch.Tensor, module.running_mean).copy_(mean)
        cast(torch.Tensor, module.running_var).copy_(var.clamp(min=1e-5))


class _OutputStats:
    """Forward hook accumulating per-output-channel sums over every call."""

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | float = 0.0
        self.total_sq: torch.Tensor | float = 0.0

    def __call__(self, module, inputs, output):
        out = output.detach().double()
        channels = out.transpose(0, 1).reshape(out.shape[1], -1)
        self.count += channels.shape[1]
        self.total = self.total + channels.sum(dim=1)
        self.total_sq = self.total_sq + (channels**2).sum(dim=1)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Tensors once a call was hooked (every layer standardised here runs).
        total, total_sq = cast(torch.Tensor, self.total), cast(torch.Tensor, self.total_sq)
        mean = total / max(self.count, 1)
        var = (total_sq / max(self.count, 1) - mean**2).clamp(min=1e-12)
        return mean, var.sqrt()


@torch.no_grad()
def _standardise_(layer: nn.Module, stats: _OutputStats, target: tuple[float, float]) -> None:
    # ConvTranspose would keep outputs in dim 1; all layers standardised here are Conv2d/Linear (with a bias).
    weight, bias = cast(torch.Tensor, layer.weight), cast(torch.Tensor, layer.bias)
    mean, std = (v.to(weight.dtype) for v in stats.mean_std())
    scale = target[1] / std.clamp(min=1e-6)
    weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))
    bias.copy_((bias - mean) * scale + target[0])


def measure_and_standardise(layers, run) -> None:
    """Run ``run()`` with output statistics hooked on ``layers``, then standardise them."""
    stats = [_OutputStats() for _ in layers]
    hooks = [layer.register_forward_hook(s) for (layer, _), s in zip(layers, stats)]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    for (layer, target), s in zip(layers, stats):
        _standardise_(layer, s, target)
    return result


class BatchNormsFromInput:
    """Within the block, every BatchNorm of ``model`` takes its statistics from its own input."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.hooks: list = []

    def __enter__(self) -> None:
        self.hooks = [m.register_forward_pre_hook(_BatchNormFromInput())
                      for m in self.model.modules() if isinstance(m, nn.BatchNorm2d)]

    def __exit__(self, *exc) -> None:
        for hook in self.hooks:
            hook.remove()
