"""Instance masks kept as each instance's window of the image: what post-processing produces.

Why: a frame's masks as one (N, H, W) array are 144 MB for 100 detections at 1600x900, yet each
instance can be positive only inside a window around its object (Mask R-CNN pastes into its box;
RTMDet-Ins and RF-DETR-Seg resize only where a source logit is above the cut). Writing those
windows into a whole-frame array, and clearing it for the next frame, was a third of RTMDet-Ins'
mask decoding (docs/performance.md). The windows are the masks, losslessly: a consumer that
wants whole frames (an overlay, an IoU, COCO's RLE) takes :meth:`WindowedMasks.dense` or one
instance's :meth:`WindowedMasks.full`, outside the timed call.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

EMPTY = np.zeros((0, 0), dtype=bool)
EMPTY.flags.writeable = False


@dataclass(frozen=True)
class WindowedMasks:
    """``shape`` (N, H, W) bool masks: instance ``i`` is ``crops[i]`` at ``origins[i]`` (top,
    left) and False elsewhere. A crop may be empty (a mask positive nowhere)."""

    shape: tuple[int, int, int]
    crops: tuple[np.ndarray, ...]
    origins: np.ndarray  # (N, 2) int64

    def __post_init__(self) -> None:
        count, height, width = self.shape
        if len(self.crops) != count or self.origins.shape != (count, 2):
            raise ValueError(f"{len(self.crops)} crops and {len(self.origins)} origins for {count} masks")
        for crop, (top, left) in zip(self.crops, self.origins.tolist()):
            if crop.size and (top < 0 or left < 0 or top + crop.shape[0] > height or left + crop.shape[1] > width):
                raise ValueError(f"a {crop.shape} window at ({top}, {left}) is outside the {height}x{width} image")

    @classmethod
    def of_windows(cls, shape: tuple[int, int, int],
                   windows: Sequence[tuple[int, int, int, np.ndarray]]) -> WindowedMasks:
        """Masks from ``(index, top, left, crop)`` windows; the masks no window names are empty."""
        crops = [EMPTY] * shape[0]
        origins = np.zeros((shape[0], 2), dtype=np.int64)
        for index, top, left, crop in windows:
            crops[index], origins[index] = crop, (top, left)
        return cls((int(shape[0]), int(shape[1]), int(shape[2])), tuple(crops), origins)

    @classmethod
    def of_dense(cls, masks: np.ndarray) -> WindowedMasks:
        """Whole-image masks as windows covering the whole image (views, no copy)."""
        count, height, width = masks.shape
        return cls((count, height, width), tuple(masks), np.zeros((count, 2), dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def window(self, index: int) -> tuple[slice, slice, np.ndarray]:
        """Instance ``index``'s rows and columns of the image, and its crop there."""
        crop = self.crops[index]
        top, left = int(self.origins[index, 0]), int(self.origins[index, 1])
        return slice(top, top + crop.shape[0]), slice(left, left + crop.shape[1]), crop

    def full(self, index: int) -> np.ndarray:
        """Instance ``index`` as an (H, W) bool array."""
        plane = np.zeros(self.shape[1:], dtype=bool)
        rows, cols, crop = self.window(index)
        plane[rows, cols] = crop
        return plane

    def planes(self) -> Iterator[np.ndarray]:
        """Each instance in turn as an (H, W) uint8 plane in Fortran order (pycocotools'
        layout). One plane serves them all: each is valid until the next is taken."""
        plane = np.zeros(self.shape[1:], dtype=np.uint8, order="F")
        for index in range(len(self)):
            rows, cols, crop = self.window(index)
            plane[rows, cols] = crop
            yield plane
            plane[rows, cols] = 0

    def dense(self) -> np.ndarray:
        """All masks as one (N, H, W) bool array. Its memory is a plain anonymous mapping, not
        ``np.zeros``: numpy asks for transparent huge pages on large arrays, and where the kernel
        compacts them on demand the first write to each 2 MB page can stall (docs/performance.md);
        the untouched pages of a mapping stay the kernel's shared zero page."""
        size = int(np.prod(self.shape))
        if not size:
            return np.zeros(self.shape, dtype=bool)
        masks = np.frombuffer(mmap.mmap(-1, size), dtype=bool).reshape(self.shape)
        for index in range(len(self)):
            rows, cols, crop = self.window(index)
            masks[index, rows, cols] = crop
        return masks

    def areas(self) -> np.ndarray:
        """(N,) positive pixels per mask."""
        return np.array([int(np.count_nonzero(crop)) for crop in self.crops], dtype=np.int64)

    def take(self, index: np.ndarray) -> WindowedMasks:
        """The masks at ``index`` (integer positions or a boolean selection), in that order."""
        positions = np.arange(len(self))[index]
        return WindowedMasks((len(positions), self.shape[1], self.shape[2]), tuple(self.crops[i] for i in positions),
                             self.origins[positions])
