"""ResNet / ResNeXt / ResNeSt backbones: MMDetection checkpoint key names, sizes and arithmetic.

Expected keys and shapes below are written out by hand from MMDetection 3.3's resnet.py,
resnext.py, resnest.py and layers/res_layer.py. Parameter counts were derived by formula
(sum of conv/BN sizes per block) and agree with published figures: torchvision resnet50 /
resnet101 minus fc, resnext101_32x4d 44.18M and timm resnest101e 48.28M minus the
2,049,000-parameter fc.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from maskbench.models.backbones.resnet import (
    ResNeSt,
    ResNeStBottleneck,
    ResNet,
    SplitAttentionConv2d,
    build_resnest101,
    build_resnet50,
    build_resnet101,
    build_resnext101_32x4d,
)

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{suffix}" for suffix in BN_SUFFIXES]


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial affine and running statistics, so that a misplaced BN changes the output."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.rand(n, generator=generator) + 0.5
            module.bias.data = torch.randn(n, generator=generator) * 0.1
            module.running_mean = torch.randn(n, generator=generator) * 0.1
            module.running_var = torch.rand(n, generator=generator) + 0.5


def _batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Inference BN by its definition, eps=1e-5 as MMDetection's BN/SyncBN default."""
    scale = bn.weight / torch.sqrt(bn.running_var + 1e-5)
    return (x - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]


@pytest.fixture(scope="module")
def resnext101() -> ResNet:
    return build_resnext101_32x4d()


@pytest.fixture(scope="module")
def resnest101() -> ResNeSt:
    return build_resnest101()


# ---------------------------------------------------------------- key names, shapes, counts


def test_resnet_first_block_keys_match_mmdetection(resnext101: ResNet) -> None:
    state = resnext101.state_dict()
    keys = list(state)
    expected_stem = ["conv1.weight", *_bn("bn1")]
    expected_block = [
        "layer1.0.conv1.weight", *_bn("layer1.0.bn1"),
        "layer1.0.conv2.weight", *_bn("layer1.0.bn2"),
        "layer1.0.conv3.weight", *_bn("layer1.0.bn3"),
        "layer1.0.downsample.0.weight", *_bn("layer1.0.downsample.1"),
    ]  # fmt: skip
    assert keys[:6] == expected_stem
    assert keys[6 : 6 + len(expected_block)] == expected_block
    # ResNeXt 32x4d: width = floor(64 * 4 / 64) * 32 = 128 in stage 1, grouped 3x3 conv.
    assert state["layer1.0.conv1.weight"].shape == (128, 64, 1, 1)
    assert state["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)
    assert state["layer1.0.conv3.weight"].shape == (256, 128, 1, 1)
    assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert state["layer4.2.conv2.weight"].shape == (1024, 32, 3, 3)
    assert "layer3.22.bn3.running_var" in state and "layer3.23.conv1.weight" not in state
    assert "layer2.1.downsample.0.weight" not in state


def test_resnest_block_keys_match_mmdetection(resnest101: ResNeSt) -> None:
    state = resnest101.state_dict()
    keys = list(state)
    expected_stem = [
        "stem.0.weight", *_bn("stem.1"),
        "stem.3.weight", *_bn("stem.4"),
        "stem.6.weight", *_bn("stem.7"),
    ]  # fmt: skip
    expected_block = [
        "layer1.0.conv1.weight", *_bn("layer1.0.bn1"),
        "layer1.0.conv2.conv.weight", *_bn("layer1.0.conv2.bn0"),
        "layer1.0.conv2.fc1.weight", "layer1.0.conv2.fc1.bias", *_bn("layer1.0.conv2.bn1"),
        "layer1.0.conv2.fc2.weight", "layer1.0.conv2.fc2.bias",
        "layer1.0.conv3.weight", *_bn("layer1.0.bn3"),
        # index 0 of the shortcut is the (parameter-free) AvgPool, even in stage 1
        "layer1.0.downsample.1.weight", *_bn("layer1.0.downsample.2"),
    ]  # fmt: skip
    assert keys[:18] == expected_stem
    assert keys[18 : 18 + len(expected_block)] == expected_block
    expected_shapes = {
        "stem.0.weight": (64, 3, 3, 3),
        "stem.3.weight": (64, 64, 3, 3),
        "stem.6.weight": (128, 64, 3, 3),
        "layer1.0.conv1.weight": (64, 128, 1, 1),
        "layer1.0.conv2.conv.weight": (128, 32, 3, 3),  # groups = radix = 2
        "layer1.0.conv2.bn0.weight": (128,),
        "layer1.0.conv2.fc1.weight": (32, 64, 1, 1),  # inter = max(64 * 2 // 4, 32)
        "layer1.0.conv2.fc2.weight": (128, 32, 1, 1),
        "layer1.0.downsample.1.weight": (256, 128, 1, 1),
        "layer2.0.conv2.fc1.weight": (64, 128, 1, 1),
        "layer2.0.downsample.1.weight": (512, 256, 1, 1),
        "layer4.0.conv2.conv.weight": (1024, 256, 3, 3),
        "layer4.0.conv2.fc1.bias": (256,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
    }
    for key, shape in expected_shapes.items():
        assert state[key].shape == shape, key
    assert not any(".bn2." in key for key in keys)  # the split-attention conv replaces bn2
    assert "layer3.22.conv2.fc2.bias" in state and "layer3.23.conv1.weight" not in state


@pytest.mark.parametrize(
    ("build", "num_keys", "num_params"),
    [
        (build_resnet50, 318, 23_508_032),
        (build_resnet101, 624, 42_500_160),
        (build_resnext101_32x4d, 624, 42_128_704),
        (lambda: ResNeSt(50, stem_channels=64), 474, 25_434_240),  # the s50 config
        (build_resnest101, 933, 46_226_016),
    ],
    ids=["r50", "r101", "x101_32x4d", "s50", "s101"],
)
def test_key_and_parameter_counts(build, num_keys: int, num_params: int) -> None:
    model = build()
    assert len(model.state_dict()) == num_keys
    assert _param_count(model) == num_params


def test_resnet_and_resnext_keys_equal_torchvision(resnext101: ResNet) -> None:
    """torchvision's ResNet v1.5 uses the same names and shapes as MMDetection's 'pytorch' style."""
    reference = torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4
    )
    expected = {k: v.shape for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in resnext101.state_dict().items()} == expected


# ---------------------------------------------------------------- shapes and strides


@pytest.mark.parametrize(
    "build", [build_resnet50, build_resnet101, build_resnext101_32x4d, build_resnest101]
)
def test_four_feature_maps_at_strides_4_to_32(build) -> None:
    model = build()
    assert not model.training
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert isinstance(features, list)
    assert model.out_channels == (256, 512, 1024, 2048)
    shapes = [tuple(f.shape) for f in features]
    assert shapes == [(1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 2048, 2, 3)]


def test_resnest_odd_input_size_rounds_up_like_mmdetection() -> None:
    """avd_layer (3x3/2, pad 1) and the ceil-mode shortcut pool must agree on odd sizes."""
    model = ResNeSt(50, stem_channels=64).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 65, 97))
    assert [tuple(f.shape[2:]) for f in features] == [(17, 25), (9, 13), (5, 7), (3, 4)]


# ---------------------------------------------------------------- arithmetic


def _stage_outputs_torchvision(model: torchvision.models.ResNet, x: torch.Tensor):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    outputs = []
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = stage(x)
        outputs.append(x)
    return outputs


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (lambda: ResNet(50), torchvision.models.resnet50),
        (lambda: ResNet(50, groups=32, base_width=4), torchvision.models.resnext50_32x4d),
    ],
    ids=["r50", "x50_32x4d"],
)
def test_resnet_matches_torchvision_with_same_weights(ours, reference) -> None:
    torch.manual_seed(0)
    reference_model = reference()
    _randomize_batch_norms(reference_model)
    reference_model.eval()
    model = ours().eval()
    state = {k: v for k, v in reference_model.state_dict().items() if not k.startswith("fc.")}
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = _stage_outputs_torchvision(reference_model, x)
        actual = model(x)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5 * e.abs().max().item())


def test_resnext_bottleneck_matches_functional_computation() -> None:
    torch.manual_seed(1)
    block = ResNet(50, groups=32, base_width=4).layer2[0].eval()  # stride 2, with shortcut
    _randomize_batch_norms(block, seed=1)
    x = torch.randn(2, 256, 9, 11)
    with torch.no_grad():
        out = F.relu(_batch_norm(F.conv2d(x, block.conv1.weight), block.bn1))
        out = F.conv2d(out, block.conv2.weight, stride=2, padding=1, groups=32)
        out = F.relu(_batch_norm(out, block.bn2))
        out = _batch_norm(F.conv2d(out, block.conv3.weight), block.bn3)
        shortcut = F.conv2d(x, block.downsample[0].weight, stride=2)
        expected = F.relu(out + _batch_norm(shortcut, block.downsample[1]))
        actual = block(x.clone())
    assert actual.shape == (2, 512, 5, 6)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def _split_attention_by_loops(module: SplitAttentionConv2d, x: torch.Tensor) -> torch.Tensor:
    """Split attention written out per radix/group/channel, with no reshape tricks."""
    radix, groups = module.radix, module.groups
    y = F.conv2d(x, module.conv.weight, stride=module.conv.stride, padding=1, groups=groups * radix)
    y = F.relu(_batch_norm(y, module.bn0))
    channels = y.shape[1] // radix
    splits = [y[:, r * channels : (r + 1) * channels] for r in range(radix)]
    pooled = sum(splits).mean(dim=(2, 3), keepdim=True)
    hidden = F.conv2d(pooled, module.fc1.weight, module.fc1.bias, groups=groups)
    hidden = F.relu(_batch_norm(hidden, module.bn1))
    logits = F.conv2d(hidden, module.fc2.weight, module.fc2.bias, groups=groups)[:, :, 0, 0]
    # fc2 output channel order is (group, radix, channel within group).
    per_group = channels // groups
    out = torch.zeros_like(splits[0])
    for g in range(groups):
        for j in range(per_group):
            channel = g * per_group + j
            radix_logits = torch.stack(
                [logits[:, g * radix * per_group + r * per_group + j] for r in range(radix)], dim=1
            )
            weights = torch.softmax(radix_logits, dim=1)
            for r in range(radix):
                out[:, channel] += weights[:, r, None, None] * splits[r][:, channel]
    return out


@pytest.mark.parametrize(("radix", "groups"), [(2, 1), (4, 2)])
def test_split_attention_matches_loop_computation(radix: int, groups: int) -> None:
    torch.manual_seed(2)
    module = SplitAttentionConv2d(16, 16, stride=1, groups=groups, radix=radix, reduction_factor=4)
    _randomize_batch_norms(module, seed=2)
    module.eval()
    x = torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        expected = _split_attention_by_loops(module, x)
        actual = module(x)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def _avg_pool_excluding_padding_ceil(x: torch.Tensor) -> torch.Tensor:
    """2x2/2 average, ceil mode, border windows averaged over their valid pixels only."""
    pad = (0, x.shape[3] % 2, 0, x.shape[2] % 2)
    sums = F.avg_pool2d(F.pad(x, pad), 2, 2) * 4
    counts = F.avg_pool2d(F.pad(torch.ones_like(x[:, :1]), pad), 2, 2) * 4
    return sums / counts


def test_resnest_stride2_bottleneck_matches_functional_computation() -> None:
    torch.manual_seed(3)
    block = ResNeSt(50, stem_channels=64).layer2[0].eval()
    assert isinstance(block, ResNeStBottleneck)
    _randomize_batch_norms(block, seed=3)
    x = torch.randn(2, 256, 9, 11)  # odd sizes exercise both pools' border rules
    with torch.no_grad():
        out = F.relu(_batch_norm(F.conv2d(x, block.conv1.weight), block.bn1))
        out = _split_attention_by_loops(block.conv2, out)  # stride 1: the pool downsamples
        out = F.avg_pool2d(F.pad(out, (1, 1, 1, 1)), 3, 2)  # zero padding counted in the mean
        out = _batch_norm(F.conv2d(out, block.conv3.weight), block.bn3)
        shortcut = F.conv2d(_avg_pool_excluding_padding_ceil(x), block.downsample[1].weight)
        expected = F.relu(out + _batch_norm(shortcut, block.downsample[2]))
        actual = block(x.clone())
    assert actual.shape == (2, 512, 5, 6)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_resnest_stem_is_three_convs_then_maxpool() -> None:
    torch.manual_seed(4)
    model = ResNeSt(50, stem_channels=64).eval()
    _randomize_batch_norms(model.stem, seed=4)
    x = torch.randn(1, 3, 33, 35)
    s = model.stem
    with torch.no_grad():
        y = F.relu(_batch_norm(F.conv2d(x, s[0].weight, stride=2, padding=1), s[1]))
        y = F.relu(_batch_norm(F.conv2d(y, s[3].weight, padding=1), s[4]))
        y = F.relu(_batch_norm(F.conv2d(y, s[6].weight, padding=1), s[7]))
        expected = F.max_pool2d(y, 3, 2, 1)
        actual = model.maxpool(model.stem(x))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- inference only


@pytest.mark.parametrize("cls", [ResNet, ResNeSt])
def test_no_training_machinery(cls) -> None:
    parameters = set(inspect.signature(cls).parameters)
    assert not parameters & {"frozen_stages", "norm_eval", "with_cp", "dcn", "plugins"}
    assert cls.train is nn.Module.train  # no norm_eval / freezing override
    model = cls(50)
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen
    model.eval()
    assert not any(m.training for m in model.modules())


def test_unsupported_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match="depth"):
        ResNet(34)
    with pytest.raises(ValueError, match="depth"):
        ResNeSt(152)
