"""Which weights a model runs with: random (untrained, calibrated), the zoo's official
checkpoint, or a checkpoint file of the user's. Decided here once, from either form the
project stores: the user's choice (``random``, ``official``, a path) or the description a run
writes (``random (seed 0, calibrated, ...)``, ``official (file.pth)``, ``checkpoint PATH``), so
records and files written before this type still read."""

from __future__ import annotations

from enum import Enum


class WeightsKind(str, Enum):
    RANDOM = "random"
    OFFICIAL = "official"
    CHECKPOINT = "checkpoint"

    def __str__(self) -> str:  # the stored word, on every Python (3.10's str() of a str Enum is its name)
        return self.value

    @classmethod
    def parse(cls, weights: object) -> WeightsKind:
        """The kind of a weights choice or of its stored description; anything else (a path, a
        ``checkpoint PATH`` description, nothing) is a checkpoint."""
        text = str(weights or "")
        for kind in (cls.RANDOM, cls.OFFICIAL):
            if text == kind.value or text.startswith(kind.value + " ("):
                return kind
        return cls.CHECKPOINT


def are_random(weights: object) -> bool:
    """Untrained weights: detections and AP measure nothing (what every report warns of)."""
    return WeightsKind.parse(weights) is WeightsKind.RANDOM
