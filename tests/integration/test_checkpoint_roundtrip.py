"""A checkpoint in MMDetection's layout ({'meta', 'state_dict'} with MMDetection's key names)
round-trips: saved from our random model, loaded back through the official-checkpoint loader,
identical outputs."""

import numpy as np
import pytest
import torch

from maskbench.models.factory import build_model, create_model
from maskbench.models.random_init import randomize_
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.predict.predictor import Predictor
from maskbench.utils.errors import CheckpointError
from maskbench.zoo import get_spec

# Key names as they appear in MMDetection's checkpoints (read off mmdet 3.3 / mmpretrain 1.2
# module names), one or more per part, per backbone family.
MMDET_KEYS = {
    "r50": ["backbone.conv1.weight", "backbone.bn1.running_var", "backbone.layer1.0.downsample.0.weight",
            "backbone.layer4.2.conv3.weight"],
    "x101": ["backbone.layer3.22.bn2.weight"],
    "s101": ["backbone.stem.0.weight", "backbone.stem.7.running_mean", "backbone.layer1.0.conv2.conv.weight",
             "backbone.layer1.0.conv2.bn0.weight", "backbone.layer2.0.conv2.fc1.bias",
             "backbone.layer2.0.downsample.1.weight", "roi_head.bbox_head.shared_convs.3.bn.running_var",
             "roi_head.bbox_head.shared_fcs.0.weight", "roi_head.mask_head.convs.0.bn.weight"],
    "swin-t": ["backbone.patch_embed.projection.weight", "backbone.patch_embed.norm.weight",
               "backbone.stages.0.blocks.1.attn.w_msa.relative_position_bias_table",
               "backbone.stages.0.blocks.0.attn.w_msa.relative_position_index",
               "backbone.stages.2.blocks.5.ffn.layers.0.0.weight", "backbone.stages.2.downsample.reduction.weight",
               "backbone.norm3.bias"],
    "convnext-t": ["backbone.downsample_layers.0.0.weight", "backbone.downsample_layers.3.1.bias",
                   "backbone.stages.2.8.depthwise_conv.weight", "backbone.stages.0.0.gamma",
                   "backbone.stages.3.2.pointwise_conv2.weight", "backbone.norm0.weight"],
}
COMMON_KEYS = ["neck.lateral_convs.0.conv.weight", "neck.fpn_convs.3.conv.bias", "rpn_head.rpn_conv.weight",
               "rpn_head.rpn_cls.weight", "rpn_head.rpn_reg.bias", "roi_head.bbox_head.fc_cls.weight",
               "roi_head.bbox_head.fc_reg.bias", "roi_head.mask_head.convs.3.conv.weight",
               "roi_head.mask_head.upsample.weight", "roi_head.mask_head.conv_logits.bias"]


@pytest.mark.parametrize("alias", sorted(MMDET_KEYS))
def test_state_dict_uses_mmdetection_key_names(alias):
    keys = build_model(get_spec(alias)).state_dict().keys()
    missing = [k for k in MMDET_KEYS[alias] + COMMON_KEYS if k not in keys]
    assert not missing
    assert all(k.split(".")[0] in {"backbone", "neck", "rpn_head", "roi_head"} for k in keys)


def _save_mmdet_checkpoint(path, state_dict, dtype=None):
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in state_dict.items()}
    torch.save({"meta": {"mmdet_version": "3.3.0", "CLASSES": ("person",) * 80, "epoch": 12},
                "state_dict": state}, path)


@pytest.mark.parametrize("alias", ["r50", "swin-t"])
def test_checkpoint_round_trip_gives_identical_outputs(alias, tmp_path, front_frame):
    small = front_frame[::4, ::4].copy()  # 400x225 keeps the test fast
    original = create_model(alias, "random", fixed_count=True)
    path = tmp_path / "model.pth"
    _save_mmdet_checkpoint(path, original.model.state_dict())
    reloaded = create_model(alias, str(path), fixed_count=True)
    a = Predictor(original, ResizeMode.STRETCH, (320, 192))(small)
    b = Predictor(reloaded, ResizeMode.STRETCH, (320, 192))(small)
    assert len(a) == 100
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_fp16_checkpoint_loads(tmp_path):
    model = randomize_(build_model(get_spec("r50")), seed=3)
    path = tmp_path / "fp16.pth"
    _save_mmdet_checkpoint(path, model.state_dict(), torch.float16)
    loaded = create_model("r50", str(path)).model.state_dict()
    weight = loaded["backbone.conv1.weight"]
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, model.state_dict()["backbone.conv1.weight"], atol=2e-3, rtol=1e-3)


def test_checkpoint_of_another_model_is_refused_naming_keys(tmp_path):
    path = tmp_path / "swin.pth"
    _save_mmdet_checkpoint(path, build_model(get_spec("swin-t")).state_dict())
    with pytest.raises(CheckpointError) as err:
        create_model("r50", str(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "backbone." in message
