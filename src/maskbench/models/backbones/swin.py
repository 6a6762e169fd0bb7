"""Swin Transformer backbone, computing what MMDetection 3.3's ``SwinTransformer`` computes at
inference, with the same parameter names so an mmdet Mask R-CNN checkpoint loads unchanged.

Three mmdet details matter for bit-level parity and are easy to get wrong:

* window padding happens *after* ``norm1`` and pads with zeros; padded tokens are not masked
  out of attention, so in non-shifted windows they act as keys/values (with ``qkv`` bias only);
* the shifted-window mask is built on the *padded* size and uses ``-100`` (not ``-inf``);
* ``PatchMerging`` concatenates each 2x2 neighbourhood in ``nn.Unfold`` order (channel-major,
  then kernel row, then kernel column), which is the order the checkpoints store
  ``downsample.norm`` and ``downsample.reduction`` in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HwShape = tuple[int, int]

#: Value mmdet adds to attention logits between tokens of different shifted regions.
SHIFT_MASK_VALUE = -100.0


def pad_bottom_right(x_nchw: Tensor, multiple: int) -> Tensor:
    """Zero-pad H and W up to a multiple, at the bottom and right only (mmdet's
    ``AdaptivePadding(padding='corner')`` when kernel == stride)."""
    height, width = x_nchw.shape[-2:]
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    if pad_h or pad_w:
        x_nchw = F.pad(x_nchw, (0, pad_w, 0, pad_h))
    return x_nchw


def relative_position_index(window_size: int) -> Tensor:
    """Index into the ``(2w-1)^2`` bias table for every (query, key) pair of a window.

    Entry ``[q, k]`` is ``(dy + w - 1) * (2w - 1) + (dx + w - 1)`` with ``dy = y_q - y_k`` and
    ``dx = x_q - x_k``; this equals mmdet's ``double_step_seq`` + ``flip`` construction."""
    coords = torch.arange(window_size)
    ys = coords.repeat_interleave(window_size)
    xs = coords.repeat(window_size)
    dy = ys[:, None] - ys[None, :] + window_size - 1
    dx = xs[:, None] - xs[None, :] + window_size - 1
    return (dy * (2 * window_size - 1) + dx).contiguous()


def window_partition(x_bhwc: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B * nWindows, window_size**2, C), windows in row-major order."""
    batch, height, width, channels = x_bhwc.shape
    x = x_bhwc.view(batch, height // window_size, window_size, width // window_size, window_size, channels)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous()
    return windows.view(-1, window_size * window_size, channels)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B * nWindows, window_size**2, C) -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, height, width, channels)


def shifted_window_mask(
    padded_hw: HwShape, window_size: int, shift_size: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Additive mask (nWindows, N, N): 0 within a region, -100 across regions.

    After the cyclic roll, the last ``window_size`` rows (and columns) of the padded map hold
    pixels from up to two regions that were not neighbours in the image; mmdet labels rows
    ``[0, Hp-w)``, ``[Hp-w, Hp-s)``, ``[Hp-s, Hp)`` (and likewise columns) and forbids
    attention between different labels."""
    padded_h, padded_w = padded_hw

    def band_labels(length: int) -> Tensor:
        positions = torch.arange(length, device=device)
        return (positions >= length - window_size).long() + (positions >= length - shift_size).long()

    labels = band_labels(padded_h)[:, None] * 3 + band_labels(padded_w)[None, :]
    label_windows = window_partition(labels[None, :, :, None], window_size).squeeze(-1)
    differs = label_windows[:, None, :] != label_windows[:, :, None]
    mask = torch.zeros(differs.shape, device=device, dtype=dtype)
    return mask.masked_fill(differs, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside one window, with a learned relative position bias.

    The operation order (scale q, q@k^T, + bias, + mask, softmax, @v) follows mmdet's
    ``WindowMSA`` so float results agree to the last bit, which a fused SDPA would not
    guarantee."""

    relative_position_index: Tensor  # a buffer

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (embed_dims // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Persistent, as in mmdet: checkpoints carry it, so strict loading needs the key.
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def relative_position_bias(self) -> Tensor:
        """(num_heads, N, N) bias added to every window's attention logits."""
        tokens = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(tokens, tokens, -1).permute(2, 0, 1).contiguous()

    def forward(self, windows: Tensor, mask: Tensor | None = None) -> Tensor:
        """windows: (B * nW, N, C); mask: (nW, N, N) additive, or None."""
        batch_windows, tokens, channels = windows.shape
        qkv = self.qkv(windows).reshape(batch_windows, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        attn = attn + self.relative_position_bias().unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(batch_windows // num_windows, num_windows, self.num_heads, tokens, tokens)
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, tokens, tokens)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch_windows, tokens, channels)
        return self.proj(out)


class ShiftedWindowAttention(nn.Module):
    """Pads to whole windows, optionally rolls by ``shift_size``, attends per window, undoes
    both. Named ``attn`` in a block, holding ``w_msa``, to match mmdet's ``ShiftWindowMSA``."""

    def __init__(
        self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0, qkv_bias: bool = True
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, {window_size}), got {shift_size}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowAttention(embed_dims, num_heads, window_size, qkv_bias)

    def forward(self, tokens: Tensor, hw_shape: HwShape) -> Tensor:
        batch, length, channels = tokens.shape
        height, width = hw_shape
        if length != height * width:
            raise ValueError(f"{length} tokens do not form a {height}x{width} map")
        x = tokens.view(batch, height, width, channels)
        # Zero padding of already-normalised tokens, bottom/right (F.pad order: C, W, H).
        pad_r = (self.window_size - width % self.window_size) % self.window_size
        pad_b = (self.window_size - height % self.window_size) % self.window_size
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        padded_h, padded_w = x.shape[1], x.shape[2]

        mask = None
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            mask = shifted_window_mask((padded_h, padded_w), self.window_size, self.shift_size, x.device, x.dtype)

        windows = self.w_msa(window_partition(x, self.window_size), mask=mask)
        x = window_reverse(windows, self.window_size, padded_h, padded_w)

        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        if pad_r or pad_b:
            x = x[:, :height, :width, :].contiguous()
        return x.view(batch, height * width, channels)


class FeedForward(nn.Module):
    """fc1 -> exact GELU -> fc2, laid out as ``layers = Sequential(Sequential(fc1, GELU), fc2)``
    so its weights are named ``layers.0.0.*`` and ``layers.1.*`` like mmcv's ``FFN``. mmcv's
    dropouts are identities at inference and hold no parameters, so they are left out; the
    residual is added by the block."""

    def __init__(self, embed_dims: int, feedforward_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.GELU()),
            nn.Linear(feedforward_channels, embed_dims),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class SwinBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        window_size: int = 7,
        shift: bool = False,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-5)
        self.attn = ShiftedWindowAttention(
            embed_dims, num_heads, window_size, shift_size=window_size // 2 if shift else 0, qkv_bias=qkv_bias
        )
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-5)
        self.ffn = FeedForward(embed_dims, feedforward_channels)

    def forward(self, x: Tensor, hw_shape: HwShape) -> Tensor:
        x = x + self.attn(self.norm1(x), hw_shape)
        return x + self.ffn(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping conv patchify + LayerNorm over tokens; pads the image bottom/right
    with zeros when its size is not a multiple of the patch size."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-5)

    def forward(self, image: Tensor) -> tuple[Tensor, HwShape]:
        x = self.projection(pad_bottom_right(image, self.patch_size))
        hw_shape = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw_shape


class PatchMerging(nn.Module):
    """Halves resolution: each 2x2 neighbourhood becomes one 4C vector, normalised and
    projected to ``out_channels`` (no bias).

    The 4C vector is in ``nn.Unfold(kernel_size=2, stride=2)`` order: index
    ``c * 4 + ky * 2 + kx``. Odd sizes are zero-padded bottom/right *before* the norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = nn.LayerNorm(4 * in_channels, eps=1e-5)
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, tokens: Tensor, hw_shape: HwShape) -> tuple[Tensor, HwShape]:
        batch, length, channels = tokens.shape
        height, width = hw_shape
        if length != height * width:
            raise ValueError(f"{length} tokens do not form a {height}x{width} map")
        x = pad_bottom_right(tokens.view(batch, height, width, channels).permute(0, 3, 1, 2), 2)
        out_h, out_w = x.shape[2] // 2, x.shape[3] // 2
        # (B, C, out_h, ky, out_w, kx) -> (B, out_h, out_w, C, ky, kx): the nn.Unfold order.
        x = x.reshape(batch, channels, out_h, 2, out_w, 2).permute(0, 2, 4, 1, 3, 5)
        merged = x.reshape(batch, out_h * out_w, 4 * channels)
        return self.reduction(self.norm(merged)), (out_h, out_w)


class SwinStage(nn.Module):
    """``depth`` blocks alternating plain and shifted windows, then an optional PatchMerging.
    Returns the pre-downsample tokens too: those are the stage's output feature map."""

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        depth: int,
        window_size: int,
        qkv_bias: bool,
        downsample: PatchMerging | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(embed_dims, num_heads, feedforward_channels, window_size, shift=i % 2 == 1, qkv_bias=qkv_bias)
            for i in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: Tensor, hw_shape: HwShape) -> tuple[Tensor, HwShape, Tensor, HwShape]:
        for block in self.blocks:
            x = block(x, hw_shape)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        down, down_hw = self.downsample(x, hw_shape)
        return down, down_hw, x, hw_shape


class SwinTransformer(nn.Module):
    """Swin backbone returning four NCHW maps (strides 4, 8, 16, 32), each passed through its
    own output LayerNorm ``norm{i}`` (mmdet ``out_indices=(0, 1, 2, 3)``, ``patch_norm=True``,
    no absolute position embedding)."""

    def __init__(
        self,
        embed_dims: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: int = 4,
        qkv_bias: bool = True,
        patch_size: int = 4,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads must have the same length")
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.out_channels = tuple(embed_dims * 2**i for i in range(len(depths)))
        self.stages = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            channels = self.out_channels[i]
            is_last = i == len(depths) - 1
            downsample = None if is_last else PatchMerging(channels, 2 * channels)
            self.stages.append(
                SwinStage(channels, heads, mlp_ratio * channels, depth, window_size, qkv_bias, downsample)
            )
        for i, channels in enumerate(self.out_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(channels, eps=1e-5))

    def forward(self, image: Tensor) -> list[Tensor]:
        x, hw_shape = self.patch_embed(image)
        outputs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw = stage(x, hw_shape)
            out = getattr(self, f"norm{i}")(out)
            outputs.append(out.view(-1, *out_hw, self.out_channels[i]).permute(0, 3, 1, 2).contiguous())
        return outputs


def build_swin_tiny() -> SwinTransformer:
    """Swin-T as in mmdet's ``mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py``."""
    return SwinTransformer(
        embed_dims=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        patch_size=4,
    )
