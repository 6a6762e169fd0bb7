"""ResNet, ResNeXt and ResNeSt backbones, inference only, computing what MMDetection 3.3 computes.

Attribute names are chosen so that ``state_dict()`` keys equal the keys of an official
MMDetection checkpoint under its ``backbone.`` prefix; a checkpoint therefore loads with
``strict=True`` and no renaming. Training-only machinery of MMDetection (frozen stages,
``norm_eval``, gradient checkpointing, DCN, plugins, init configs) is left out on purpose:
these modules are meant to run under ``.eval()``, where BatchNorm uses its running statistics
(``SyncBN`` checkpoints load into ``BatchNorm2d`` unchanged, as both store the same buffers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Blocks per stage; only the depths used by the MMDetection Mask R-CNN configs we support.
STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
}

EXPANSION = 4  # Bottleneck output channels = planes * EXPANSION
BASE_CHANNELS = 64  # planes of stage i = BASE_CHANNELS * 2**i
STAGE_STRIDES = (1, 2, 2, 2)
BN_EPS = 1e-5


def _stage_blocks(depth: int) -> tuple[int, int, int, int]:
    if depth not in STAGE_BLOCKS:
        raise ValueError(f"unsupported depth {depth}; expected one of {sorted(STAGE_BLOCKS)}")
    return STAGE_BLOCKS[depth]


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def bottleneck_width(planes: int, groups: int, base_width: int) -> int:
    """Channels of the 3x3 conv, as MMDetection's ResNeXt/ResNeSt compute them.

    With one group the width is ``planes`` whatever ``base_width`` says (plain ResNet);
    otherwise ``floor(planes * base_width / 64) * groups`` (e.g. 32x4d: 128, 256, 512, 1024).
    """
    if groups == 1:
        return planes
    return (planes * base_width // BASE_CHANNELS) * groups


class Bottleneck(nn.Module):
    """ResNet/ResNeXt bottleneck, 'pytorch' style: the stride sits on the 3x3 conv.

    ``downsample`` is the shortcut projection (``conv``, ``bn``) of the first block of a
    stage, ``None`` elsewhere; it is owned here so that its keys read
    ``layerN.0.downsample.{0,1}.*`` as in the checkpoints.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int,
        groups: int,
        base_width: int,
        downsample: nn.Sequential | None,
    ) -> None:
        super().__init__()
        width = bottleneck_width(planes, groups, base_width)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = _batch_norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = _batch_norm(width)
        self.conv3 = nn.Conv2d(width, planes * EXPANSION, 1, bias=False)
        self.bn3 = _batch_norm(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_stage(blocks: Sequence[nn.Module]) -> nn.Sequential:
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """MMDetection ``ResNet`` (style='pytorch'), or ``ResNeXt`` when ``groups > 1``.

    ``ResNet(101, groups=32, base_width=4)`` is MMDetection's ResNeXt-101 32x4d: ResNeXt
    differs from ResNet only in the width and grouping of the 3x3 conv.
    """

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, depth: int, groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        stage_blocks = _stage_blocks(depth)
        self.conv1 = nn.Conv2d(3, BASE_CHANNELS, 7, stride=2, padding=3, bias=False)
        self.bn1 = _batch_norm(BASE_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = BASE_CHANNELS
        for index, (num_blocks, stride) in enumerate(zip(stage_blocks, STAGE_STRIDES)):
            planes = BASE_CHANNELS * 2**index
            # Every first block projects its shortcut: stage 1 changes channels (64 -> 256),
            # the others change channels and stride.
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, planes * EXPANSION, 1, stride=stride, bias=False),
                _batch_norm(planes * EXPANSION),
            )
            blocks = [Bottleneck(in_channels, planes, stride, groups, base_width, downsample)]
            blocks += [
                Bottleneck(planes * EXPANSION, planes, 1, groups, base_width, None)
                for _ in range(1, num_blocks)
            ]
            self.add_module(f"layer{index + 1}", _make_stage(blocks))
            in_channels = planes * EXPANSION
        self.out_channels: tuple[int, int, int, int] = (256, 512, 1024, 2048)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return C2..C5 (strides 4, 8, 16, 32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            features.append(x)
        return features


class SplitAttentionConv2d(nn.Module):
    """ResNeSt split-attention 3x3 conv (MMDetection ``SplitAttentionConv2d``).

    One grouped conv produces ``radix`` candidate maps per channel; a squeeze of their sum
    (global average pool -> fc1 -> bn1 -> relu -> fc2) gives per-channel logits, which a
    softmax over the radix axis turns into weights for the candidates. Norm names ``bn0``
    and ``bn1`` and the biased ``fc1``/``fc2`` follow MMDetection so the checkpoint keys match.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        groups: int,
        radix: int,
        reduction_factor: int,
    ) -> None:
        super().__init__()
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.groups = groups
        self.conv = nn.Conv2d(
            in_channels,
            channels * radix,
            3,
            stride=stride,
            padding=1,
            groups=groups * radix,
            bias=False,
        )
        self.bn0 = _batch_norm(channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.bn1 = _batch_norm(inter_channels)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)

    def _radix_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Weights laid out (batch, radix, channels): fc2's output is ordered
        (group, radix, channel-in-group), hence the transpose before the softmax."""
        batch = logits.shape[0]
        if self.radix == 1:
            return torch.sigmoid(logits).view(batch, 1, -1)
        logits = logits.view(batch, self.groups, self.radix, -1).transpose(1, 2)
        return F.softmax(logits, dim=1).reshape(batch, self.radix, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0(self.conv(x)))
        batch = x.shape[0]
        splits = x.view(batch, self.radix, -1, *x.shape[2:])
        gap = F.adaptive_avg_pool2d(splits.sum(dim=1), 1)
        gap = self.relu(self.bn1(self.fc1(gap)))
        weights = self._radix_softmax(self.fc2(gap))
        return (weights[..., None, None] * splits).sum(dim=1).contiguous()


class ResNeStBottleneck(nn.Module):
    """ResNeSt bottleneck (MMDetection ``resnest.Bottleneck`` with avg_down_stride=True).

    The 3x3 split-attention conv keeps stride 1; a stride-2 block instead downsamples right
    after it with ``avd_layer``, a 3x3 AvgPool (padding 1, zero padding counted in the mean,
    as in PyTorch's default and in MMDetection). There is no ``bn2``: the split-attention conv
    normalises internally.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int,
        radix: int,
        reduction_factor: int,
        downsample: nn.Sequential | None,
    ) -> None:
        super().__init__()
        width = planes  # groups == 1 in the MMDetection ResNeSt configs
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = _batch_norm(width)
        self.conv2 = SplitAttentionConv2d(width, width, 1, 1, radix, reduction_factor)
        self.conv3 = nn.Conv2d(width, planes * EXPANSION, 1, bias=False)
        self.bn3 = _batch_norm(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.avd_layer is not None:
            out = self.avd_layer(out)
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _deep_stem(stem_channels: int) -> nn.Sequential:
    """ResNetV1d stem: three 3x3 convs (the first with stride 2) instead of one 7x7."""
    half = stem_channels // 2
    return nn.Sequential(
        nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
        _batch_norm(half),
        nn.ReLU(inplace=True),
        nn.Conv2d(half, half, 3, stride=1, padding=1, bias=False),
        _batch_norm(half),
        nn.ReLU(inplace=True),
        nn.Conv2d(half, stem_channels, 3, stride=1, padding=1, bias=False),
        _batch_norm(stem_channels),
        nn.ReLU(inplace=True),
    )


def _avg_down_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """ResNetV1d shortcut: AvgPool then a stride-1 1x1 conv, so no input pixel is skipped.

    The pool is present even with stride 1 (stage 1, where it is the identity), as in
    MMDetection's ``ResLayer``; that keeps the conv at index 1 in every stage's keys.
    """
    return nn.Sequential(
        nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False),
        nn.Conv2d(in_channels, out_channels, 1, stride=1, bias=False),
        _batch_norm(out_channels),
    )


class ResNeSt(nn.Module):
    """MMDetection ``ResNeSt`` (a ResNetV1d: deep stem and avg-pool shortcuts) with
    split-attention bottlenecks, groups=1 and avg_down_stride=True as in its configs."""

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(
        self,
        depth: int,
        stem_channels: int = 128,
        radix: int = 2,
        reduction_factor: int = 4,
    ) -> None:
        super().__init__()
        stage_blocks = _stage_blocks(depth)
        self.stem = _deep_stem(stem_channels)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = stem_channels
        for index, (num_blocks, stride) in enumerate(zip(stage_blocks, STAGE_STRIDES)):
            planes = BASE_CHANNELS * 2**index
            downsample = _avg_down_shortcut(in_channels, planes * EXPANSION, stride)
            blocks = [
                ResNeStBottleneck(in_channels, planes, stride, radix, reduction_factor, downsample)
            ]
            blocks += [
                ResNeStBottleneck(planes * EXPANSION, planes, 1, radix, reduction_factor, None)
                for _ in range(1, num_blocks)
            ]
            self.add_module(f"layer{index + 1}", _make_stage(blocks))
            in_channels = planes * EXPANSION
        self.out_channels: tuple[int, int, int, int] = (256, 512, 1024, 2048)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return C2..C5 (strides 4, 8, 16, 32)."""
        x = self.maxpool(self.stem(x))
        features = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            features.append(x)
        return features


def build_resnet50() -> ResNet:
    """Backbone of mask-rcnn_r50_fpn_*; returned in eval mode (inference only)."""
    return ResNet(50).eval()


def build_resnet101() -> ResNet:
    """Backbone of mask-rcnn_r101_fpn_*; returned in eval mode (inference only)."""
    return ResNet(101).eval()


def build_resnext101_32x4d() -> ResNet:
    """Backbone of mask-rcnn_x101-32x4d_fpn_*; returned in eval mode (inference only)."""
    return ResNet(101, groups=32, base_width=4).eval()


def build_resnest101() -> ResNeSt:
    """Backbone of mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x; eval mode (inference only)."""
    return ResNeSt(101, stem_channels=128, radix=2, reduction_factor=4).eval()
