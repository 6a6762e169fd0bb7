"""What differs between Mask R-CNN zoo models after the backbone.

Plain data with no torch import: the zoo table holds one per model, and listing the zoo (or
building the command line's parser) must not import model code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadOptions:
    """What differs between zoo models after the backbone."""

    bbox_head_convs: int = 0  # 4 for ResNeSt's Shared4Conv1FCBBoxHead
    bbox_head_fcs: int = 2  # 1 for Shared4Conv1FCBBoxHead
    head_norm: bool = False  # BatchNorm in the RoI heads' convs (ResNeSt)
    num_classes: int = 80
