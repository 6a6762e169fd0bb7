"""Feature pyramid exactly as MMDetection's ``FPN`` with ``num_outs=5`` and no extra convs.

P6 is a stride-2 max-pool (kernel 1) of P5's output, as MMDetection does when
``add_extra_convs=False``; top-down upsampling is nearest to the lateral's exact size.
Parameter names (``lateral_convs.i.conv``, ``fpn_convs.i.conv``) follow the checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _ConvModule(nn.Module):
    """A bare conv under a ``.conv`` attribute, so keys read ``<name>.conv.weight``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FPN(nn.Module):
    def __init__(self, in_channels: Sequence[int], out_channels: int = 256, num_outs: int = 5) -> None:
        super().__init__()
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList(_ConvModule(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(_ConvModule(out_channels, out_channels, 3) for _ in in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest"
            )
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs
