"""The weights' kind, read from the user's choice and from what runs stored (old records too)."""

import json

import pytest

from maskbench.zoo.weights_kind import WeightsKind, are_random


@pytest.mark.parametrize(("stored", "kind"), [
    ("random", WeightsKind.RANDOM),
    ("random (seed 3, calibrated, untrained: detections are meaningless)", WeightsKind.RANDOM),
    ("official", WeightsKind.OFFICIAL),
    ("official (mask_rcnn_r50.pth)", WeightsKind.OFFICIAL),
    ("checkpoint", WeightsKind.CHECKPOINT),
    ("checkpoint random.pth", WeightsKind.CHECKPOINT),
    ("random.pth", WeightsKind.CHECKPOINT),  # a file named so is a checkpoint, not random weights
    ("", WeightsKind.CHECKPOINT),
])
def test_the_kind_is_read_from_a_choice_or_a_stored_description(stored, kind):
    assert WeightsKind.parse(stored) is kind
    assert are_random(stored) == (kind is WeightsKind.RANDOM)


def test_the_kind_is_stored_as_its_word():
    assert str(WeightsKind.RANDOM) == f"{WeightsKind.RANDOM}" == "random"
    assert json.dumps({"weights": WeightsKind.OFFICIAL}) == '{"weights": "official"}'
