"""Swin-T (mmdet) and ConvNeXt-T (mmpretrain) backbones: names, sizes, and the computation
checked against naive references written here from the papers' / mmdet's definitions."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskbench.models.backbones.convnext import ConvNeXt, ConvNeXtBlock, LayerNorm2d, build_convnext_tiny
from maskbench.models.backbones.swin import (
    PatchMerging,
    SwinBlock,
    SwinTransformer,
    build_swin_tiny,
    relative_position_index,
)


@pytest.fixture(scope="module")
def swin_tiny():
    torch.manual_seed(0)
    return build_swin_tiny().eval()


@pytest.fixture(scope="module")
def convnext_tiny():
    torch.manual_seed(0)
    return build_convnext_tiny().eval()


def randomize_(module: nn.Module, seed: int = 0) -> None:
    """Fill every parameter with noise, so that zero-initialised tables or unit norms cannot
    hide an indexing mistake."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.5)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("height,width", [(64, 96), (96, 160)])
def test_swin_tiny_output_shapes(swin_tiny, height, width):
    with torch.no_grad():
        outs = swin_tiny(torch.randn(1, 3, height, width))
    assert swin_tiny.out_channels == (96, 192, 384, 768)
    expected = [(1, c, height // s, width // s) for c, s in zip((96, 192, 384, 768), (4, 8, 16, 32))]
    assert [tuple(o.shape) for o in outs] == expected
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("height,width", [(64, 96), (96, 160)])
def test_convnext_tiny_output_shapes(convnext_tiny, height, width):
    with torch.no_grad():
        outs = convnext_tiny(torch.randn(1, 3, height, width))
    assert convnext_tiny.out_channels == (96, 192, 384, 768)
    expected = [(1, c, height // s, width // s) for c, s in zip((96, 192, 384, 768), (4, 8, 16, 32))]
    assert [tuple(o.shape) for o in outs] == expected


# ---------------------------------------------------------------- names and sizes


def test_swin_tiny_state_dict_names(swin_tiny):
    keys = list(swin_tiny.state_dict())
    block = "stages.0.blocks.0."
    assert keys[:18] == [
        "patch_embed.projection.weight",
        "patch_embed.projection.bias",
        "patch_embed.norm.weight",
        "patch_embed.norm.bias",
        block + "norm1.weight",
        block + "norm1.bias",
        block + "attn.w_msa.relative_position_bias_table",
        block + "attn.w_msa.relative_position_index",
        block + "attn.w_msa.qkv.weight",
        block + "attn.w_msa.qkv.bias",
        block + "attn.w_msa.proj.weight",
        block + "attn.w_msa.proj.bias",
        block + "norm2.weight",
        block + "norm2.bias",
        block + "ffn.layers.0.0.weight",
        block + "ffn.layers.0.0.bias",
        block + "ffn.layers.1.weight",
        block + "ffn.layers.1.bias",
    ]
    for i in range(3):
        assert f"stages.{i}.downsample.norm.weight" in keys
        assert f"stages.{i}.downsample.reduction.weight" in keys
        assert f"stages.{i}.downsample.reduction.bias" not in keys
    assert not any(k.startswith("stages.3.downsample") for k in keys)
    assert [k for k in keys if k.startswith("norm")] == [f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")]
    # 4 patch_embed + 12 blocks x 14 + 3 downsamples x 3 + 4 out norms x 2
    assert len(keys) == 4 + 12 * 14 + 3 * 3 + 4 * 2 == 189
    shapes = swin_tiny.state_dict()
    assert shapes["stages.3.blocks.1.attn.w_msa.relative_position_bias_table"].shape == (169, 24)
    assert shapes["stages.2.downsample.reduction.weight"].shape == (768, 1536)


def swin_parameter_formula(embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7, patch=4):
    """Block of width C: 2 LNs (4C) + qkv (3C^2+3C) + proj (C^2+C) + fc1 (4C^2+4C) + fc2
    (4C^2+C) = 12C^2 + 13C, plus the (2w-1)^2 x heads bias table. PatchMerging C->2C: LN over 4C
    (8C) + bias-free Linear 4C->2C (8C^2). Out norms 2C each; patch embed conv + LN."""
    total = 3 * embed * patch * patch + embed + 2 * embed
    for i, (depth, num_heads) in enumerate(zip(depths, heads)):
        c = embed * 2**i
        total += depth * (12 * c * c + 13 * c + (2 * window - 1) ** 2 * num_heads) + 2 * c
        if i < len(depths) - 1:
            total += 8 * c + 8 * c * c
    return total


def test_swin_tiny_parameter_count(swin_tiny):
    count = sum(p.numel() for p in swin_tiny.parameters())
    assert count == swin_parameter_formula() == 27_520_698
    buffers = dict(swin_tiny.named_buffers())
    assert len(buffers) == 12 and all(k.endswith("relative_position_index") for k in buffers)


def test_convnext_tiny_state_dict_names_and_count(convnext_tiny):
    state = convnext_tiny.state_dict()
    keys = list(state)
    assert keys[:4] == [
        "downsample_layers.0.0.weight",
        "downsample_layers.0.0.bias",
        "downsample_layers.0.1.weight",
        "downsample_layers.0.1.bias",
    ]
    assert state["downsample_layers.0.0.weight"].shape == (96, 3, 4, 4)
    assert state["downsample_layers.1.0.weight"].shape == (96,)  # LN first, then conv
    assert state["downsample_layers.1.1.weight"].shape == (192, 96, 2, 2)
    block = "stages.0.0."
    block_keys = [k for k in keys if k.startswith(block)]
    assert block_keys == [
        block + "gamma",
        block + "depthwise_conv.weight",
        block + "depthwise_conv.bias",
        block + "norm.weight",
        block + "norm.bias",
        block + "pointwise_conv1.weight",
        block + "pointwise_conv1.bias",
        block + "pointwise_conv2.weight",
        block + "pointwise_conv2.bias",
    ]
    assert state[block + "pointwise_conv1.weight"].shape == (384, 96)  # Linear, not 1x1 conv
    assert "stages.2.8.gamma" in state and "stages.2.9.gamma" not in state
    assert [k for k in keys if k.startswith("norm")] == [f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")]
    # stem 4 + 3 downsamples x 4 + 18 blocks x 9 + 4 out norms x 2
    assert len(keys) == 4 + 3 * 4 + 18 * 9 + 4 * 2 == 186
    assert torch.equal(state[block + "gamma"], torch.ones(96))  # layer_scale_init_value=1.0


def convnext_parameter_formula(depths=(3, 3, 9, 3), channels=(96, 192, 384, 768)):
    """Block of width C: dwconv 7x7 (49C + C) + LN (2C) + Linear C->4C (4C^2+4C) + Linear
    4C->C (4C^2+C) + gamma (C) = 8C^2 + 58C. Downsample C'->C: LN (2C') + conv 2x2 (4C'C + C).
    Stem conv 4x4 + LN; out norms 2C each."""
    total = 3 * channels[0] * 16 + channels[0] + 2 * channels[0]
    for i, (depth, c) in enumerate(zip(depths, channels)):
        if i:
            total += 2 * channels[i - 1] + 4 * channels[i - 1] * c + c
        total += depth * (8 * c * c + 58 * c) + 2 * c
    return total


def test_convnext_tiny_parameter_count(convnext_tiny):
    assert sum(p.numel() for p in convnext_tiny.parameters()) == convnext_parameter_formula() == 27_821_472
    assert not list(convnext_tiny.buffers())


# ---------------------------------------------------------------- Swin computation


def test_relative_position_index_matches_mmdet_construction():
    """mmdet builds the index as seq[i*w+j] = i*(2w-1)+j, index = (seq[None]+seq[:,None]) with
    columns flipped; our closed form must give the same table (and the buffer is persistent)."""
    for window in (2, 3, 7):
        rows = torch.arange(window) * (2 * window - 1)
        seq = (rows[:, None] + torch.arange(window)[None, :]).reshape(1, -1)
        mmdet_index = (seq + seq.T).flip(1)
        assert torch.equal(relative_position_index(window), mmdet_index)


def shift_region_labels(padded_h, padded_w, window, shift):
    """Region ids on the rolled, padded map, by mmdet's three slices per axis."""
    labels = torch.zeros(padded_h, padded_w, dtype=torch.long)
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for count, (hs, ws) in enumerate(itertools.product(slices, slices)):
        labels[hs, ws] = count
    return labels


def naive_swin_block(block, x, hw, attend_to_padding=True):
    """Per-query reference for a SwinBlock: pad normalised tokens with zeros, attend to every
    key in the query's (shifted) window with bias table[(dy+w-1)(2w-1)+(dx+w-1)] and -100 across
    shift regions, then the MLP. ``attend_to_padding=False`` gives the semantics mmdet does NOT
    have (padded keys masked out), to show the test can tell them apart."""
    height, width = hw
    window, shift = block.attn.window_size, block.attn.shift_size
    msa = block.attn.w_msa
    heads, channels = msa.num_heads, x.shape[-1]
    head_dims = channels // heads
    padded_h, padded_w = math.ceil(height / window) * window, math.ceil(width / window) * window

    normed = F.layer_norm(x[0], (channels,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    grid = torch.zeros(padded_h, padded_w, channels, dtype=x.dtype)
    grid[:height, :width] = normed.view(height, width, channels)
    qkv = (grid @ msa.qkv.weight.T + msa.qkv.bias).view(padded_h, padded_w, 3, heads, head_dims)
    labels = shift_region_labels(padded_h, padded_w, window, shift) if shift else None

    attended = torch.zeros(height, width, channels, dtype=x.dtype)
    for i, j in itertools.product(range(height), range(width)):
        a, b = (i - shift) % padded_h, (j - shift) % padded_w  # position after the roll
        top, left = a // window * window, b // window * window
        keys, values, biases = [], [], []
        for a2, b2 in itertools.product(range(top, top + window), range(left, left + window)):
            i2, j2 = (a2 + shift) % padded_h, (b2 + shift) % padded_w  # original padded coordinate
            if not attend_to_padding and (i2 >= height or j2 >= width):
                continue
            table_row = (a - a2 + window - 1) * (2 * window - 1) + (b - b2 + window - 1)
            bias = msa.relative_position_bias_table[table_row].clone()
            if shift and labels[a, b] != labels[a2, b2]:
                bias = bias - 100.0
            keys.append(qkv[i2, j2, 1])
            values.append(qkv[i2, j2, 2])
            biases.append(bias)
        keys, values, biases = torch.stack(keys), torch.stack(values), torch.stack(biases)  # (K, heads, d)
        query = qkv[i, j, 0]
        logits = torch.einsum("hd,khd->hk", query * head_dims**-0.5, keys) + biases.T
        attended[i, j] = torch.einsum("hk,khd->hd", logits.softmax(-1), values).reshape(channels)

    x = x[0] + (attended.view(-1, channels) @ msa.proj.weight.T + msa.proj.bias)
    fc1, fc2 = block.ffn.layers[0][0], block.ffn.layers[1]
    hidden = F.layer_norm(x, (channels,), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    hidden = F.gelu(hidden @ fc1.weight.T + fc1.bias)
    return (x + hidden @ fc2.weight.T + fc2.bias)[None]


@pytest.mark.parametrize(
    "hw,window,shift",
    [
        ((6, 6), 3, False),  # exact windows, no shift
        ((6, 6), 3, True),  # exact windows, shifted
        ((5, 7), 3, False),  # padding, no shift: padded zeros are keys
        ((5, 7), 3, True),  # padding + shift: mask built on the padded 6x9 map
        ((2, 3), 7, True),  # map smaller than the window (Swin-T stage 4 on a 64x96 image)
        ((8, 5), 4, True),  # even window, shift 2
    ],
)
def test_swin_block_equals_naive_windowed_attention(hw, window, shift):
    torch.manual_seed(1)
    block = SwinBlock(embed_dims=8, num_heads=2, feedforward_channels=16, window_size=window, shift=shift)
    randomize_(block, seed=2)
    block = block.double().eval()
    x = torch.randn(1, hw[0] * hw[1], 8, dtype=torch.float64)
    with torch.no_grad():
        ours = block(x, hw)
        reference = naive_swin_block(block, x, hw)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-10)
    padded = hw[0] % window or hw[1] % window
    if padded:
        with torch.no_grad():
            masked_padding = naive_swin_block(block, x, hw, attend_to_padding=False)
        assert (ours - masked_padding).abs().max() > 1e-3


def test_window_equal_to_map_is_global_attention_with_bias():
    """Window 4 on a 4x4 map, no shift: one window, so W-MSA must equal ordinary multi-head
    self-attention (torch's MultiheadAttention) with the relative bias as an additive mask."""
    torch.manual_seed(3)
    block = SwinBlock(embed_dims=12, num_heads=3, feedforward_channels=24, window_size=4, shift=False)
    randomize_(block, seed=4)
    block.eval()
    msa = block.attn.w_msa
    reference = nn.MultiheadAttention(12, 3, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(msa.qkv.weight)
        reference.in_proj_bias.copy_(msa.qkv.bias)
        reference.out_proj.weight.copy_(msa.proj.weight)
        reference.out_proj.bias.copy_(msa.proj.bias)
        tokens = torch.randn(2, 16, 12)
        expected, _ = reference(tokens, tokens, tokens, attn_mask=msa.relative_position_bias().repeat(2, 1, 1))
        ours = block.attn(tokens, (4, 4))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def capture_merged_tokens(merging, tokens, hw):
    """The 4C vectors PatchMerging feeds to its norm, caught with a forward hook."""
    captured = {}
    handle = merging.norm.register_forward_hook(lambda m, args, out: captured.setdefault("x", args[0]))
    with torch.no_grad():
        _, out_hw = merging(tokens, hw)
    handle.remove()
    return captured["x"], out_hw


def test_patch_merging_uses_unfold_channel_order():
    """Value 100c + 10y + x at channel c, row y, column x; the merged vector of output (i, j)
    must list channel 0's 2x2 block (row-major), then channel 1's, i.e. nn.Unfold's order."""
    channels, height, width = 2, 4, 6
    c, y, x = torch.meshgrid(torch.arange(channels), torch.arange(height), torch.arange(width), indexing="ij")
    image = (100 * c + 10 * y + x).float()  # (C, H, W)
    tokens = image.permute(1, 2, 0).reshape(1, height * width, channels)
    merged, out_hw = capture_merged_tokens(PatchMerging(channels, 2 * channels), tokens, (height, width))
    assert out_hw == (2, 3)
    i, j = 1, 2
    expected = [100 * ch + 10 * (2 * i + ky) + (2 * j + kx) for ch in range(2) for ky in range(2) for kx in range(2)]
    assert merged[0, i * 3 + j].tolist() == expected
    unfolded = nn.Unfold(kernel_size=2, stride=2)(image[None]).transpose(1, 2)
    assert torch.equal(merged, unfolded)


def test_patch_merging_pads_odd_sizes_with_zeros_before_norm():
    channels, height, width = 3, 3, 5
    tokens = torch.randn(1, height * width, channels) + 5.0  # nonzero everywhere
    merged, out_hw = capture_merged_tokens(PatchMerging(channels, 2 * channels), tokens, (height, width))
    assert out_hw == (2, 3)
    image = tokens.view(1, height, width, channels).permute(0, 3, 1, 2)
    expected = nn.Unfold(kernel_size=2, stride=2)(F.pad(image, (0, 1, 0, 1))).transpose(1, 2)
    assert torch.equal(merged, expected)
    # Bottom-right output: only its top-left pixel is real, the other three kernel slots are zero.
    last = merged[0, -1].view(channels, 4)
    assert (last[:, 1:] == 0).all() and (last[:, 0] != 0).all()


def test_patch_embed_pads_bottom_right_when_not_divisible():
    torch.manual_seed(5)
    model = SwinTransformer(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=3).eval()
    image = torch.randn(1, 3, 30, 21)
    with torch.no_grad():
        ours = model(image)
        explicit = model(F.pad(image, (0, 3, 0, 2)))  # to 32x24
    assert [tuple(o.shape) for o in ours] == [(1, 8, 8, 6), (1, 16, 4, 3)]
    for a, b in zip(ours, explicit):
        assert torch.equal(a, b)


def test_swin_output_is_normed_pre_downsample_tokens():
    """Stage i's output is norm{i} of the tokens *before* PatchMerging, as NCHW."""
    torch.manual_seed(6)
    model = SwinTransformer(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=3).eval()
    randomize_(model, seed=7)
    image = torch.randn(1, 3, 24, 20)
    with torch.no_grad():
        outs = model(image)
        tokens, hw = model.patch_embed(image)
        for block in model.stages[0].blocks:
            tokens = block(tokens, hw)
        expected = model.norm0(tokens).view(1, *hw, 8).permute(0, 3, 1, 2)
    assert torch.equal(outs[0], expected)


# ---------------------------------------------------------------- ConvNeXt computation


def test_layernorm2d_normalises_over_channels():
    norm = LayerNorm2d(5)
    randomize_(norm, seed=8)
    x = torch.randn(2, 5, 3, 4)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    with torch.no_grad():
        out = norm(x)
        out_last = norm(x.permute(0, 2, 3, 1), channels_last=True)
    assert norm.eps == 1e-6
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(out_last.permute(0, 3, 1, 2), out)
    assert out.is_contiguous()


def test_convnext_block_equals_conv_formulation():
    """mmpretrain's other formulation (1x1 convs on NCHW) must give the same block output,
    including the per-channel layer scale."""
    block = ConvNeXtBlock(6, layer_scale_init_value=1.0)
    randomize_(block, seed=9)
    block = block.double().eval()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        y = block.depthwise_conv(x)
        y = block.norm(y)
        y = F.conv2d(y, block.pointwise_conv1.weight[:, :, None, None], block.pointwise_conv1.bias)
        y = F.gelu(y)
        y = F.conv2d(y, block.pointwise_conv2.weight[:, :, None, None], block.pointwise_conv2.bias)
        expected = x + y * block.gamma.view(1, -1, 1, 1)
        ours = block(x)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)


def test_convnext_without_layer_scale_has_no_gamma():
    model = ConvNeXt(depths=(1, 1), channels=(4, 8), layer_scale_init_value=0.0)
    assert not any(k.endswith("gamma") for k in model.state_dict())


def test_convnext_outputs_are_normed_stage_outputs():
    model = ConvNeXt(depths=(1, 2), channels=(4, 8)).eval()
    randomize_(model, seed=10)
    image = torch.randn(1, 3, 16, 24)
    with torch.no_grad():
        outs = model(image)
        x = model.stages[0](model.downsample_layers[0](image))
        expected0 = model.norm0(x)
        expected1 = model.norm1(model.stages[1](model.downsample_layers[1](x)))
    assert [tuple(o.shape) for o in outs] == [(1, 4, 4, 6), (1, 8, 2, 3)]
    assert torch.equal(outs[0], expected0) and torch.equal(outs[1], expected1)
