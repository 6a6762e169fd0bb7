"""RF-DETR's backbone: a windowed DINOv2 ViT-S (no register tokens in the seg models) and the
LW-DETR multi-scale projector (one P4 level for the seg models).

Windowed attention: the patch grid is cut into ``num_windows x num_windows`` windows, each a
separate sequence with its own copy of the CLS token; blocks listed in ``window_block_indexes``
attend within a window, the others over all windows of an image at once (the window sequences
concatenated, CLS copies included). Feature maps are taken after blocks 3, 6, 9, 12 (ViT stage
numbers), layer-normed, their CLS tokens dropped and the windows put back in place.

Module and parameter names follow rfdetr's, so its checkpoints load as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ...zoo.rfdetr_sizes import RFDETRSegSize

VIT_LAYER_NORM_EPS = 1e-6
PROJECTOR_NORM_EPS = 1e-6


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) map (ConvNeXt style)."""

    def __init__(self, channels: int, eps: float = PROJECTOR_NORM_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PatchEmbeddings(nn.Module):
    def __init__(self, width: int, patch_size: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)


class Embeddings(nn.Module):
    """Patch embedding + CLS token + learned positions on the native grid, then windowing."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        grid = size.resolution // size.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size.vit_width))
        self.mask_token = nn.Parameter(torch.zeros(1, size.vit_width))  # training only; kept for the checkpoint
        self.patch_embeddings = PatchEmbeddings(size.vit_width, size.patch_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid + 1, size.vit_width))
        self.patch_size = size.patch_size
        self.num_windows = size.num_windows

    def forward(self, images: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        tokens = self.patch_embeddings.projection(images).flatten(2).transpose(1, 2)
        if tokens.shape[1] + 1 != self.position_embeddings.shape[1] or height != width:
            grid = round((self.position_embeddings.shape[1] - 1) ** 0.5) * self.patch_size
            raise ValueError(f"RF-DETR-Seg input must be {grid}x{grid} (its native resolution), got {height}x{width}")
        tokens = torch.cat((self.cls_token.expand(batch, -1, -1), tokens), dim=1) + self.position_embeddings
        windows = self.num_windows
        if windows == 1:
            return tokens
        rows, cols = height // self.patch_size, width // self.patch_size
        cls, patches = tokens[:, :1], tokens[:, 1:].reshape(batch, rows, cols, -1)
        patches = patches.reshape(batch * windows, rows // windows, windows, cols // windows, -1)
        patches = patches.permute(0, 2, 1, 3, 4).reshape(batch * windows**2, (rows // windows) * (cols // windows), -1)
        return torch.cat((cls.repeat(windows**2, 1, 1), patches), dim=1)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def _split_heads(self, x: Tensor) -> Tensor:
        return x.view(*x.shape[:-1], self.heads, x.shape[-1] // self.heads).permute(0, 2, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        query, key = self._split_heads(self.query(x)), self._split_heads(self.key(x))
        value = self._split_heads(self.value(x))
        context = F.scaled_dot_product_attention(query, key, value)
        context = context.permute(0, 2, 1, 3).contiguous()
        return context.view(*context.shape[:-2], -1)


class SelfOutput(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention = SelfAttention(width, heads)
        self.output = SelfOutput(width)

    def forward(self, x: Tensor) -> Tensor:
        return self.output.dense(self.attention(x))


class LayerScale(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(width))


class Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block with layer scale; ``global_attention`` joins an image's windows."""

    def __init__(self, width: int, heads: int, num_windows: int, global_attention: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=VIT_LAYER_NORM_EPS)
        self.attention = Attention(width, heads)
        self.layer_scale1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=VIT_LAYER_NORM_EPS)
        self.mlp = Mlp(width)
        self.layer_scale2 = LayerScale(width)
        self.windows_squared = num_windows**2
        self.global_attention = global_attention

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        if self.global_attention:
            x = x.view(x.shape[0] // self.windows_squared, self.windows_squared * x.shape[1], x.shape[2])
        attended = self.attention(self.norm1(x))
        if self.global_attention:
            attended = attended.view(shortcut.shape)
        x = attended * self.layer_scale1.lambda1 + shortcut
        return self.mlp(self.norm2(x)) * self.layer_scale2.lambda1 + x


class Encoder(nn.Module):
    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        windowed = set(size.window_block_indexes)
        self.layer = nn.ModuleList(Block(size.vit_width, size.vit_heads, size.num_windows, i not in windowed)
                                   for i in range(size.vit_layers))


class WindowedDinov2(nn.Module):
    """The ViT; returns the feature maps after the blocks in ``out_feature_indexes``."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        self.embeddings = Embeddings(size)
        self.encoder = Encoder(size)
        self.layernorm = nn.LayerNorm(size.vit_width, eps=VIT_LAYER_NORM_EPS)
        self.out_feature_indexes = size.out_feature_indexes
        self.patch_size = size.patch_size
        self.num_windows = size.num_windows

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.embeddings(images)
        features = []
        for stage, block in enumerate(self.encoder.layer, start=1):
            x = block(x)
            if stage in self.out_feature_indexes:
                features.append(self._to_map(self.layernorm(x), images.shape))
        return features

    def _to_map(self, tokens: Tensor, image_shape: torch.Size) -> Tensor:
        """(batch * windows^2, 1 + tokens per window, C) -> (batch, C, rows, cols)."""
        batch, rows, cols = image_shape[0], image_shape[2] // self.patch_size, image_shape[3] // self.patch_size
        patches = tokens[:, 1:]
        windows = self.num_windows
        if windows > 1:
            channels = patches.shape[-1]
            patches = patches.reshape(batch * windows, windows, rows // windows, cols // windows, channels)
            patches = patches.permute(0, 2, 1, 3, 4)
        return patches.reshape(batch, rows, cols, -1).permute(0, 3, 1, 2).contiguous()


class DinoV2(nn.Module):
    """rfdetr's wrapper level (``backbone.0.encoder``), kept for the checkpoint's key names."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        self.encoder = WindowedDinov2(size)

    def forward(self, images: Tensor) -> list[Tensor]:
        return self.encoder(images)


class ConvNormAct(nn.Module):
    """Conv (no bias) -> channel LayerNorm -> SiLU; rfdetr's ``ConvX`` with ``layer_norm=True``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        self.bn = ChannelLayerNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cv1 = ConvNormAct(channels, channels, 3)
        self.cv2 = ConvNormAct(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.cv2(self.cv1(x))  # no shortcut in the projector's C2f


class C2f(nn.Module):
    """CSP block: split, three chained bottlenecks, concatenate everything, fuse."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int = 3) -> None:
        super().__init__()
        self.hidden = out_channels // 2
        self.cv1 = ConvNormAct(in_channels, 2 * self.hidden, 1)
        self.cv2 = ConvNormAct((2 + blocks) * self.hidden, out_channels, 1)
        self.m = nn.ModuleList(Bottleneck(self.hidden) for _ in range(blocks))

    def forward(self, x: Tensor) -> Tensor:
        parts = list(self.cv1(x).split((self.hidden, self.hidden), 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class Projector(nn.Module):
    """The P4 level (scale 1): the four ViT maps concatenated, C2f, LayerNorm."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        in_channels = size.vit_width * len(size.out_feature_indexes)
        stage = nn.Sequential(C2f(in_channels, size.hidden_dim), ChannelLayerNorm(size.hidden_dim))
        self.stages = nn.ModuleList([stage])

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.stages[0](torch.cat(features, dim=1))


class Backbone(nn.Module):
    """``backbone.0``: ViT then projector; one (N, hidden, H/patch, W/patch) map."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        self.encoder = DinoV2(size)
        self.projector = Projector(size)

    def forward(self, images: Tensor) -> Tensor:
        return self.projector(self.encoder(images))
