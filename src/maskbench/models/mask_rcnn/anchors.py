"""Anchor boxes exactly as MMDetection's ``AnchorGenerator`` lays them out.

The order matters: RPN outputs are flattened as (H, W, anchor) and anchors must line up with
them, and the per-level top-k picks anchors by that index. MMDetection centres base anchors on
the top-left corner of each cell (``center_offset=0``), not the cell centre.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class AnchorGenerator:
    """Anchors for each FPN level: ratio-major, then scale, then grid position."""

    def __init__(
        self,
        strides: Sequence[int] = (4, 8, 16, 32, 64),
        ratios: Sequence[float] = (0.5, 1.0, 2.0),
        scales: Sequence[float] = (8.0,),
    ) -> None:
        self.strides = tuple(strides)
        self.base_anchors = [self._base_anchors(s, ratios, scales) for s in self.strides]

    @property
    def num_anchors_per_location(self) -> int:
        return int(self.base_anchors[0].shape[0])

    @staticmethod
    def _base_anchors(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> torch.Tensor:
        ratios_t = torch.tensor(ratios, dtype=torch.float32)
        scales_t = torch.tensor(scales, dtype=torch.float32)
        h_ratios = torch.sqrt(ratios_t)
        w_ratios = 1 / h_ratios
        # scale_major=True: the ratio index varies slowest.
        ws = (stride * w_ratios[:, None] * scales_t[None, :]).reshape(-1)
        hs = (stride * h_ratios[:, None] * scales_t[None, :]).reshape(-1)
        return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1)

    def grid_anchors(self, feature_sizes: Sequence[tuple[int, int]], device=None,
                     dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """One (H*W*A, 4) tensor per level, for feature maps of the given (H, W).

        As MMDetection's ``grid_priors(dtype=...)``: base anchors are computed in float32 and
        cast, grid shifts and their sum are in ``dtype`` (the features' precision)."""
        anchors = []
        for base, stride, (height, width) in zip(self.base_anchors, self.strides, feature_sizes):
            base = base.to(device=device, dtype=dtype)
            shift_x = torch.arange(width, device=device).to(dtype) * stride
            shift_y = torch.arange(height, device=device).to(dtype) * stride
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=-1)
            anchors.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        return anchors
