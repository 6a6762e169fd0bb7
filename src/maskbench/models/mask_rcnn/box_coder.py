"""Box deltas (dx, dy, dw, dh) to corner boxes, as MMDetection's ``DeltaXYWHBBoxCoder``.

MMDetection 3.x measures width as ``x2 - x1`` (no +1), clamps ``dw``/``dh`` at
``|log(16/1000)|`` and clips to the resized image (not the padded one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

WH_RATIO_CLIP = 16 / 1000


def decode_deltas(
    boxes: torch.Tensor,
    deltas: torch.Tensor,
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    max_shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Apply ``deltas`` (K, 4) to reference ``boxes`` (K, 4); clip to ``max_shape`` (h, w)."""
    deltas = deltas * deltas.new_tensor(stds)
    centers = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    sizes = boxes[:, 2:] - boxes[:, :2]
    max_ratio = abs(math.log(WH_RATIO_CLIP))
    new_centers = centers + sizes * deltas[:, :2]
    new_sizes = sizes * deltas[:, 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    decoded = torch.cat([new_centers - new_sizes * 0.5, new_centers + new_sizes * 0.5], dim=-1)
    if max_shape is not None:
        height, width = max_shape
        decoded = torch.stack(
            [
                decoded[:, 0].clamp(min=0, max=width),
                decoded[:, 1].clamp(min=0, max=height),
                decoded[:, 2].clamp(min=0, max=width),
                decoded[:, 3].clamp(min=0, max=height),
            ],
            dim=-1,
        )
    return decoded
