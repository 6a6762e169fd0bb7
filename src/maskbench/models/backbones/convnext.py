"""ConvNeXt backbone, computing what mmpretrain 1.2's ``ConvNeXt`` computes at inference as
used by mmdet's ConvNeXt Mask R-CNN (``out_indices=[0, 1, 2, 3]``,
``gap_before_final_norm=False``, ``linear_pw_conv=True``), with mmpretrain's parameter names.

mmpretrain's ``LayerNorm2d`` normalises over channels by permuting NCHW -> NHWC, calling
``F.layer_norm`` and permuting back (made contiguous); inside a block the norm is applied
directly to the NHWC tensor that the linear point-wise convs then consume. We keep both paths
so the float operations are the same as mmpretrain's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: mmpretrain ConvNeXt's ``norm_cfg=dict(type='LN2d', eps=1e-6)``.
CONVNEXT_LN_EPS = 1e-6


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an image tensor (NCHW by default, or NHWC)."""

    def __init__(self, num_channels: int, eps: float = CONVNEXT_LN_EPS) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor, channels_last: bool = False) -> Tensor:
        if channels_last:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2).contiguous()


class ConvNeXtBlock(nn.Module):
    """x + gamma * pw2(GELU(pw1(LN(dwconv7x7(x))))), point-wise convs as Linear on NHWC."""

    def __init__(self, channels: int, mlp_ratio: int = 4, layer_scale_init_value: float = 1e-6) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = LayerNorm2d(channels)
        self.pointwise_conv1 = nn.Linear(channels, mlp_ratio * channels)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(mlp_ratio * channels, channels)
        # mmpretrain omits gamma (and its checkpoint key) when the init value is 0.
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(channels)) if layer_scale_init_value > 0 else None
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        y = self.depthwise_conv(x).permute(0, 2, 3, 1)
        y = self.norm(y, channels_last=True)
        y = self.pointwise_conv2(self.act(self.pointwise_conv1(y)))
        y = y.permute(0, 3, 1, 2)
        if self.gamma is not None:
            y = y.mul(self.gamma.view(1, -1, 1, 1))
        return shortcut + y


class ConvNeXt(nn.Module):
    """ConvNeXt v1 returning four NCHW maps (strides 4, 8, 16, 32), each through ``norm{i}``.

    ``downsample_layers[0]`` is the stem (conv k4 s4, LN2d); ``downsample_layers[i>0]`` is
    (LN2d, conv k2 s2). ``stages[i][j]`` are the blocks."""

    def __init__(
        self,
        depths: tuple[int, ...] = (3, 3, 9, 3),
        channels: tuple[int, ...] = (96, 192, 384, 768),
        layer_scale_init_value: float = 1.0,
        in_channels: int = 3,
        stem_patch_size: int = 4,
    ) -> None:
        super().__init__()
        if len(depths) != len(channels):
            raise ValueError("depths and channels must have the same length")
        self.out_channels = tuple(channels)
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(in_channels, channels[0], kernel_size=stem_patch_size, stride=stem_patch_size),
                    LayerNorm2d(channels[0]),
                )
            ]
        )
        for previous, current in zip(channels[:-1], channels[1:]):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm2d(previous), nn.Conv2d(previous, current, kernel_size=2, stride=2))
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(width, layer_scale_init_value=layer_scale_init_value) for _ in range(depth)))
            for depth, width in zip(depths, channels)
        )
        for i, width in enumerate(channels):
            self.add_module(f"norm{i}", LayerNorm2d(width))

    def forward(self, image: Tensor) -> list[Tensor]:
        outputs = []
        x = image
        for i, (downsample, stage) in enumerate(zip(self.downsample_layers, self.stages)):
            x = stage(downsample(x))
            outputs.append(getattr(self, f"norm{i}")(x))
        return outputs


def build_convnext_tiny() -> ConvNeXt:
    """ConvNeXt-T as in mmdet's ``mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py``."""
    return ConvNeXt(depths=(3, 3, 9, 3), channels=(96, 192, 384, 768), layer_scale_init_value=1.0)
