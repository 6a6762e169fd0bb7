"""Parity with rfdetr 1.11.2 itself for the six RF-DETR-Seg sizes (docs/rfdetr.md).

The fixtures are rfdetr's own float64 outputs (tools/rfdetr_oracle/make_fixtures.py) for
deterministic random weights that both sides generate from (seed, recipe); here maskbench
regenerates the weights, runs the same frames through its own pre-processing, network and
post-processing, and must reproduce rfdetr's top 100 detections:

- float64: the same (slot, query) pairs in the same order, boxes within 1e-8 px, scores within
  1e-11, each of the first 20 masks with IoU >= 0.9999 against rfdetr's pixels and every mask's
  pixel count within 1e-4 (measured on all 12 runs: 4.5e-13 px, 3.7e-15, identical masks; the
  margin is for other CPUs' float64 kernels, which moved MMDetection's parity by up to 7e-12 px);
- float32 (the same weights rounded), nano only: within ten times rfdetr's own float32-vs-float64
  spread recorded in the fixture (floors 0.01 px, 1e-4), all matched.
CI runs float64 for all six sizes on the COCO frame and both tiers on both frames for nano;
``MASKBENCH_SLOW_TESTS=1`` adds the nuScenes frame for the other five sizes.
"""

from __future__ import annotations

import pytest
import torch

from maskbench.models.rfdetr import decoder, postprocess
from maskbench.models.rfdetr.model import RFDETRSeg
from maskbench.zoo.rfdetr_sizes import SIZES

from .rfdetr_parity import (
    FRAMES,
    RunVerdict,
    Tolerance,
    available_fixtures,
    load_fixture,
    parity_models,
    run_once,
)

FIXTURES = available_fixtures()
CI_FRAME = "coco_184324"
FULL_SIZE = "rfdetr-seg-n"  # both frames and the float32 tier in CI

FLOAT64 = Tolerance(min_matched=100, box_px=1e-8, score=1e-11, min_mask_iou=0.9999, area_rel=1e-4, input_rel=1e-12)


def float32_tolerance(spread: dict) -> Tolerance:
    """Ten times rfdetr's own float32 spread on this run (float32 rounds differently on every
    CPU kind, by similar amounts), with small floors."""
    return Tolerance(min_matched=spread["reference_count"], box_px=max(10 * spread["max_box_diff"], 0.01),
                     score=max(10 * spread["max_score_diff"], 1e-4),
                     min_mask_iou=min(0.999, 1 - 10 * (1 - spread["min_mask_iou"])), area_rel=1e-2, input_rel=1e-6)


def runs() -> list:
    params = []
    for alias in FIXTURES:
        for frame in FRAMES:
            slow = frame != CI_FRAME and alias != FULL_SIZE
            params.append(pytest.param(alias, frame, id=f"{alias}-{frame}", marks=[pytest.mark.slow] if slow else []))
    return params


def test_every_size_has_a_fixture():
    assert FIXTURES == sorted(s.alias for s in SIZES)


@pytest.mark.parametrize(("alias", "frame"), runs())
def test_float64_parity(alias: str, frame: str):
    double, _, fingerprint = parity_models(alias)
    fixture = load_fixture(alias)
    assert abs(fingerprint - fixture["weights_fingerprint"]) <= 1e-12 * fixture["weights_fingerprint"]
    verdict = run_once(double, fixture, frame)
    assert verdict.same_order == verdict.count, verdict
    assert not FLOAT64.failures(verdict), (FLOAT64.failures(verdict), verdict)


@pytest.mark.parametrize("frame", FRAMES)
def test_float32_within_rfdetrs_own_spread(frame: str):
    _, single, _ = parity_models(FULL_SIZE)
    fixture = load_fixture(FULL_SIZE)
    tolerance = float32_tolerance(fixture["runs"][frame]["float32_spread"])
    verdict = run_once(single, fixture, frame)
    assert not tolerance.failures(verdict), (tolerance.failures(verdict), verdict)


def _changed(monkeypatch, module, name: str, value) -> RunVerdict:
    monkeypatch.setattr(module, name, value)
    double, _, _ = parity_models(FULL_SIZE)
    return run_once(double, load_fixture(FULL_SIZE), CI_FRAME)


@pytest.mark.parametrize(("module", "name", "value"), [
    (postprocess, "IMAGENET_STD", (0.229, 0.224, 0.226)),  # one channel's std off by 0.4%
    (decoder, "OFFSET_SCALE", 0.5 * (1 + 1e-6)),  # deformable sampling offsets scaled by 1 + 1e-6
])
def test_a_changed_constant_fails(monkeypatch, module, name, value):
    failures = FLOAT64.failures(_changed(monkeypatch, module, name, value))
    assert failures, f"{module.__name__}.{name} = {value} still passes float64 parity"


def test_state_dict_and_parameter_count_equal_rfdetrs():
    for alias in FIXTURES:
        fixture = load_fixture(alias)
        with torch.device("meta"):
            ours = RFDETRSeg(alias)
        shapes = {k: list(v.shape) for k, v in ours.state_dict().items()}
        reference = {k: v for k, v in fixture["state_dict_shapes"].items() if k != "_kp_active_mask"}
        assert list(shapes.items()) == list(reference.items()), alias
        count = sum(p.numel() for p in ours.parameters())
        assert count == fixture["parameters"] == next(s.parameters for s in SIZES if s.alias == alias)
