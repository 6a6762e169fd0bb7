"""CSPNeXt backbone (RTMDet), computing what MMDetection 3.3's ``CSPNeXt`` computes at inference
with the RTMDet configs' settings: ``arch='P5'``, ``expand_ratio=0.5``, ``channel_attention=True``,
SiLU, ``norm_cfg=dict(type='SyncBN')`` (a plain BatchNorm at inference, eps 1e-5: the config's
dict replaces the class default ``eps=1e-3``) and ``out_indices=(2, 3, 4)``.

Modules and parameter names are MMCV's (``ConvModule`` -> ``.conv``/``.bn``,
``DepthwiseSeparableConvModule`` -> ``.depthwise_conv``/``.pointwise_conv``) so an official
checkpoint's ``backbone.*`` entries load without renaming. The building blocks are shared with
the RTMDet neck (:mod:`maskbench.models.rtmdet.model`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ``SyncBN`` built from ``dict(type='SyncBN')``: torch's defaults.
BN_EPS = 1e-5

#: (in_channels, out_channels, num_blocks, add_identity, use_spp) of the P5 stages at factor 1.
P5_STAGES = ((64, 128, 3, True, False), (128, 256, 6, True, False),
             (256, 512, 6, True, False), (512, 1024, 3, False, True))


class ConvModule(nn.Module):
    """MMCV's ``ConvModule`` as RTMDet uses it: conv (no bias, a BN follows), BN, SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """Depthwise kxk then pointwise 1x1, each with its own BN and SiLU (MMCV's defaults)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(in_channels, in_channels, kernel_size, groups=in_channels)
        self.pointwise_conv = ConvModule(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class CSPNeXtBlock(nn.Module):
    """3x3 conv then a depthwise-separable 5x5; the input is added back when ``add_identity``
    (the backbone's first three stages) and the widths allow it."""

    def __init__(self, in_channels: int, out_channels: int, add_identity: bool, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = ConvModule(in_channels, out_channels, 3)  # expansion 1.0 inside CSPLayer
        self.conv2 = DepthwiseSeparableConv(out_channels, out_channels, kernel_size)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Squeeze-excite without reduction: global mean, 1x1 conv (with bias), hard sigmoid, scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return x * F.hardsigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))


class CSPLayer(nn.Module):
    """Cross-stage partial layer: a main path through ``blocks`` and a 1x1 shortcut path,
    concatenated (main first), optionally re-weighted per channel, then fused by a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, add_identity: bool,
                 channel_attention: bool, expand_ratio: float = 0.5) -> None:
        super().__init__()
        mid_channels = int(out_channels * expand_ratio)
        self.main_conv = ConvModule(in_channels, mid_channels, 1)
        self.short_conv = ConvModule(in_channels, mid_channels, 1)
        self.final_conv = ConvModule(2 * mid_channels, out_channels, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid_channels, mid_channels, add_identity)
                                      for _ in range(num_blocks)))
        self.attention = ChannelAttention(2 * mid_channels) if channel_attention else None

    def forward(self, x: Tensor) -> Tensor:
        short = self.short_conv(x)
        y = torch.cat((self.blocks(self.main_conv(x)), short), dim=1)
        if self.attention is not None:
            y = self.attention(y)
        return self.final_conv(y)


class SPPBottleneck(nn.Module):
    """YOLOv3-SPP pooling (parallel max-pools 5, 9, 13, stride 1, concatenated with their
    input), not the sequential SPPF: that is what MMDetection's ``CSPNeXt`` builds."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid_channels = in_channels // 2
        self.conv1 = ConvModule(in_channels, mid_channels, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvModule(mid_channels * (len(kernel_sizes) + 1), out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """Stem (three 3x3 convs, stride 2 first) and four stages (``stage1`` .. ``stage4``), each a
    stride-2 3x3 conv, the SPP in the last one, then a ``CSPLayer``. Returns the outputs of
    stages 2, 3, 4 (strides 8, 16, 32)."""

    def __init__(self, deepen_factor: float = 1.0, widen_factor: float = 1.0, expand_ratio: float = 0.5,
                 channel_attention: bool = True) -> None:
        super().__init__()
        stem_out = int(P5_STAGES[0][0] * widen_factor)
        stem_mid = int(P5_STAGES[0][0] * widen_factor // 2)
        self.stem = nn.Sequential(ConvModule(3, stem_mid, 3, stride=2), ConvModule(stem_mid, stem_mid, 3),
                                  ConvModule(stem_mid, stem_out, 3))
        out_channels = []
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(P5_STAGES):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            num_blocks = max(round(blocks * deepen_factor), 1)  # Python's round, as MMDetection
            layers: list[nn.Module] = [ConvModule(cin, cout, 3, stride=2)]
            if use_spp:
                layers.append(SPPBottleneck(cout, cout))
            layers.append(CSPLayer(cout, cout, num_blocks, add_identity, channel_attention, expand_ratio))
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
            out_channels.append(cout)
        self.out_channels = tuple(out_channels[1:])

    def forward(self, image: Tensor) -> list[Tensor]:
        x = self.get_submodule("stage1")(self.stem(image))
        outputs = []
        for name in ("stage2", "stage3", "stage4"):
            x = self.get_submodule(name)(x)
            outputs.append(x)
        return outputs


def build_cspnext(deepen_factor: float, widen_factor: float) -> CSPNeXt:
    """The zoo's builder (``zoo.RTMDetOptions`` holds each size's factors)."""
    return CSPNeXt(deepen_factor, widen_factor)
