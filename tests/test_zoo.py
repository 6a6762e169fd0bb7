import re
from pathlib import Path

import pytest
import torch

from maskbench.models.factory import build_model
from maskbench.utils.errors import UnknownModelError
from maskbench.weights import sha256_prefix_from_url
from maskbench.zoo import MODELS, RFDETR_SEG, STUDY_MODELS, get_spec
from maskbench.zoo.views import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_names_and_aliases_are_unique_and_resolve():
    names = [m.name for m in MODELS] + [m.alias for m in MODELS]
    assert len(names) == len(set(names))
    for spec in MODELS:
        assert get_spec(spec.name) is spec and get_spec(spec.alias) is spec


def test_unknown_model_is_one_line_error_listing_aliases():
    with pytest.raises(UnknownModelError) as err:
        get_spec("mask-rcnn_r152")
    assert "\n" not in str(err.value) and "convnext-t" in str(err.value)


def test_study_models_are_the_five_of_the_study():
    backbones = sorted(get_spec(n).backbone for n in STUDY_MODELS)
    assert backbones == ["ConvNeXt-T", "ResNeSt-101", "ResNeXt-101 32x4d", "ResNet-101", "Swin-T"]


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.alias)
def test_hash_prefix_is_the_one_in_the_official_file_name(spec):
    if spec.family is RFDETR_SEG:  # rfdetr's bucket; rfdetr lists each file's MD5
        assert spec.weights.url.startswith("https://storage.googleapis.com/rfdetr/rf-detr-seg-")
        assert spec.weights.sha256_prefix is None and re.fullmatch(r"[0-9a-f]{32}", spec.weights.md5 or "")
        return
    # Mask R-CNN checkpoints are in MMDetection 2.x's folder, RTMDet-Ins ones in 3.x's
    assert spec.weights.url.startswith(("https://download.openmmlab.com/mmdetection/v2.0/",
                                        "https://download.openmmlab.com/mmdetection/v3.0/rtmdet/"))
    assert sha256_prefix_from_url(spec.weights.url) == spec.weights.sha256_prefix


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.alias)
def test_parameter_count_in_table_is_the_built_models(spec):
    with torch.device("meta"):  # shapes only: no initialisation to wait for
        model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params


def test_readme_table_is_generated_from_the_zoo():
    assert markdown_table() in README.read_text(), "regenerate with `maskbench zoo --markdown`"


def test_every_family_has_rows_and_the_defaults_the_cli_states():
    from maskbench.utils.names import KEEP_RATIO_SCALE, RTMDET_INPUT_SIZE, STUDY_INPUT_SIZE
    from maskbench.zoo import MASK_RCNN_INPUT, RTMDET_INPUT, families

    assert {spec.family for spec in MODELS} == set(families())
    assert (MASK_RCNN_INPUT.stretch_size, MASK_RCNN_INPUT.keep_ratio_scale) == (STUDY_INPUT_SIZE, KEEP_RATIO_SCALE)
    assert RTMDET_INPUT.stretch_size == RTMDET_INPUT.keep_ratio_scale == RTMDET_INPUT_SIZE
