"""PyTorch's bilinear resize (``align_corners=False``, no antialias) along one axis, in numpy.

Why here: two families resize the way PyTorch does and run without torch on the robot.
RTMDet-Ins upsamples mask logits (:mod:`.instance_masks`); RF-DETR-Seg resizes its float image
to the square input and its mask logits straight to the original image. Matching PyTorch to
the bit means its arithmetic: the source coordinate ``max(scale * (i + 0.5) - 0.5, 0)`` in the
tensor's precision (float32: a 1600-pixel axis puts up to 4e-5 into a [0, 1] pixel against the
exact coordinate, which is what OpenCV computes; measured), taps ``floor`` and ``floor + 1`` (the
last index repeated at the edge), weights ``1 - frac`` and ``frac``. Measured against
``F.interpolate`` (tests/test_bilinear.py): within 1 ulp in float32 and float64 (73-79 % of the samples bit-equal:
PyTorch's summation order is not reproduced).

A mask resize is evaluated on the window where it can be positive: bilinear weights are
non-negative, so an output whose sources are all <= the cut stays below it
(:func:`threshold_resized`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .blas_threads import map_masks
from .windowed_masks import WindowedMasks


@dataclass(frozen=True)
class Taps:
    """Per output: its two source indices and the second one's weight (in the axis' precision)."""

    first: np.ndarray
    second: np.ndarray
    weight_second: np.ndarray


def linear_taps(in_len: int, out_len: int, scale: float | None = None, dtype: type[np.floating] = np.float32,
                fused: bool = False) -> Taps:
    """The taps of one axis; ``scale`` None: ``in / out`` in ``dtype`` (PyTorch given a size).
    ``fused``: the source coordinate rounded once, as PyTorch's CPU kernels compute it (compiled
    with fused multiply-adds for AVX2 and AVX-512; measured: float32 1 ulp from PyTorch instead of
    up to 3e-6 on a 1600-pixel axis), exactly: a float32 product is exact in float64, a float64
    one in fractions."""
    step = dtype(in_len) / dtype(out_len) if scale is None else dtype(scale)
    centres = np.arange(out_len, dtype=dtype) + dtype(0.5)
    if fused and dtype == np.float32:
        src = (np.float64(step) * centres.astype(np.float64) - 0.5).astype(dtype)
    elif fused:
        exact, half = Fraction(float(step)), Fraction(1, 2)
        src = np.array([float(exact * Fraction(float(c)) - half) for c in centres], dtype=dtype)
    else:
        src = step * centres - dtype(0.5)
    src = np.maximum(src, dtype(0))
    first = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    second = np.where(first < in_len - 1, first + 1, first)
    return Taps(first, second, np.clip(src - first.astype(dtype), 0, 1).astype(dtype))


def linear_weights(taps: Taps, in_len: int, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """(outputs, sources) weight matrix of the taps, in ``dtype``."""
    second = taps.weight_second.astype(dtype)
    weights = np.zeros((len(taps.first), in_len), dtype=dtype)
    rows = np.arange(len(taps.first))
    np.add.at(weights, (rows, taps.first), dtype(1) - second)
    np.add.at(weights, (rows, taps.second), second)
    return weights


def resize_image(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, C) float32/float64 -> (h, w, C): ``F.interpolate(bilinear)`` of the CHW image, taps
    in the image's precision, columns first, then rows (PyTorch's nesting)."""
    dtype = image.dtype.type
    rows = linear_taps(image.shape[0], out_hw[0], dtype=dtype, fused=True)
    cols = linear_taps(image.shape[1], out_hw[1], dtype=dtype, fused=True)
    needed = np.union1d(rows.first, rows.second)
    at = np.searchsorted(needed, rows.first), np.searchsorted(needed, rows.second)
    picked = image[needed]
    col_first = cols.weight_second[None, :, None]
    across = picked[:, cols.first] * (dtype(1) - col_first) + picked[:, cols.second] * col_first
    row_second = rows.weight_second[:, None, None]
    return across[at[0]] * (dtype(1) - row_second) + across[at[1]] * row_second


@dataclass(frozen=True)
class AxisResize:
    """One axis of a mask resize: ``weights`` (outputs x sources) and, precomputed so that a
    mask's window costs no search, the outputs each source reaches (``reach_lo/hi``; sources
    cut off by a crop reach nothing: both = the output count) and the sources each output
    reads (``source_lo/hi``). All ranges are contiguous and grow with the index."""

    weights: np.ndarray
    reach_lo: np.ndarray
    reach_hi: np.ndarray
    source_lo: np.ndarray
    source_hi: np.ndarray

    @classmethod
    def of(cls, weights: np.ndarray) -> AxisResize:
        outputs, sources = weights.shape
        nonzero = weights != 0
        reached = nonzero.any(axis=0)
        reach_lo = np.where(reached, nonzero.argmax(axis=0), outputs)
        reach_hi = np.where(reached, outputs - nonzero[::-1].argmax(axis=0), outputs)
        source_lo = nonzero.argmax(axis=1)
        source_hi = sources - nonzero[:, ::-1].argmax(axis=1)
        return cls(np.ascontiguousarray(weights), reach_lo, reach_hi, source_lo, source_hi)


@lru_cache(maxsize=32)
def direct_axis(in_len: int, out_len: int, dtype_name: str) -> AxisResize:
    """PyTorch's resize of one axis straight to ``out_len``, weights in ``dtype_name``."""
    dtype = np.dtype(dtype_name).type
    return AxisResize.of(linear_weights(linear_taps(in_len, out_len, dtype=dtype, fused=True), in_len, dtype))


def logit_cut(threshold: float) -> float:
    """The logit a sigmoid threshold in (0, 1) corresponds to (``sigmoid(x) > t`` iff ``x > cut``);
    a threshold outside (0, 1) is taken as the cut itself."""
    return math.log(threshold / (1 - threshold)) if 0 < threshold < 1 else threshold


# Outputs per band of a window's long axis: each band's product reads only the few sources its
# outputs need (a bilinear weight matrix is banded), instead of every source of the window.
# Worth it only where the window's sources are many times a band's (random-weight masks
# scattered over the frame: windows of ~1 M outputs over ~65 sources); a band costs a call.
BAND = 64
BAND_SAVING = 4


def threshold_resized(logits: np.ndarray, axis_y: AxisResize, axis_x: AxisResize, cut) -> WindowedMasks:
    """(N, h, w) logits -> (N, H, W) bool ``resized > cut`` (H, W: the axes' outputs), each mask
    computed only on its window, and kept as that window."""
    windows = mask_windows(np.greater(logits, cut), axis_y, axis_x)
    crops = [np.empty((r1 - r0, c1 - c0), dtype=bool) for _, r0, r1, c0, c1, *_ in windows.rows]

    def decode(k: int) -> None:
        i, r0, r1, c0, c1, s0, s1, t0, t1, left_first, band = windows.rows[k]
        out = crops[k]
        left, source, right = axis_y.weights[r0:r1, s0:s1], logits[i, s0:s1, t0:t1], axis_x.weights[c0:c1, t0:t1].T
        if not band:  # one product for the whole window (most windows: a call per band costs more)
            np.greater((left @ source) @ right if left_first else left @ (source @ right), cut, out=out)
        elif left_first:  # the rows resized first (R x t), then the columns band by band
            rows_done = left @ source
            for a, b, ta, tb in _bands(axis_x, c0, c1, band):
                np.greater(rows_done[:, ta - t0:tb - t0] @ axis_x.weights[a:b, ta:tb].T, cut, out=out[:, a - c0:b - c0])
        else:  # the columns first (s x C), then the rows band by band
            cols_done = source @ right
            for a, b, sa, sb in _bands(axis_y, r0, r1, band):
                np.greater(axis_y.weights[a:b, sa:sb] @ cols_done[sa - s0:sb - s0], cut, out=out[a - r0:b - r0])

    map_masks(decode, len(windows.rows), windows.multiply_adds)
    shape = (logits.shape[0], axis_y.weights.shape[0], axis_x.weights.shape[0])
    return WindowedMasks.of_windows(shape, [(row[0], row[1], row[3], crop) for row, crop in zip(windows.rows, crops)])


def _bands(axis: AxisResize, lo: int, hi: int, step: int) -> list[tuple[int, int, int, int]]:
    """Outputs ``[lo, hi)`` in bands of ``step``, each with the sources ``[first, last)`` it reads."""
    return [(a, min(a + step, hi), int(axis.source_lo[a]), int(axis.source_hi[min(a + step, hi) - 1]))
            for a in range(lo, hi, step)]


@dataclass(frozen=True)
class WindowPlan:
    """Per mask that can be positive: ``(mask, r0, r1, c0, c1, s0, s1, t0, t1, left_first, band)``,
    its output window ``[r0, r1) x [c0, c1)``, the sources ``[s0, s1) x [t0, t1)`` it reads,
    whether the rows are resized first (``left_first``: a tall, wide window over a small source),
    and the outputs per band of the axis resized second (0: one product for the window);
    ``multiply_adds``: the products' work."""

    rows: list[tuple[int, int, int, int, int, int, int, int, int, bool, int]]
    multiply_adds: int


def mask_windows(positive: np.ndarray, axis_y: AxisResize, axis_x: AxisResize) -> WindowPlan:
    """The windows of (N, h, w) masks whose positive sources are ``positive``: every output a
    positive source reaches (elsewhere all sources are <= the cut). For all masks at once: a
    Python step per mask cost more than its product on RTMDet-Ins' 100 small windows."""
    rows_any: np.ndarray = np.asarray(positive.any(axis=2))
    cols_any: np.ndarray = np.asarray(positive.any(axis=1))
    height, width = rows_any.shape[1], cols_any.shape[1]
    r0 = axis_y.reach_lo[rows_any.argmax(axis=1)]
    r1 = axis_y.reach_hi[height - 1 - rows_any[:, ::-1].argmax(axis=1)]
    c0 = axis_x.reach_lo[cols_any.argmax(axis=1)]
    c1 = axis_x.reach_hi[width - 1 - cols_any[:, ::-1].argmax(axis=1)]
    # no positive source, or positive only where a crop cut it off: nothing to compute
    kept = np.flatnonzero(rows_any.any(axis=1) & (r1 > r0) & (c1 > c0))
    r0, r1, c0, c1 = r0[kept], r1[kept], c0[kept], c1[kept]
    s0, s1 = axis_y.source_lo[r0], axis_y.source_hi[r1 - 1]
    t0, t1 = axis_x.source_lo[c0], axis_x.source_hi[c1 - 1]
    rows, cols, sources_y, sources_x = r1 - r0, c1 - c0, s1 - s0, t1 - t0
    band_x, band_y = _band(cols, sources_x), _band(rows, sources_y)
    left_first = rows * sources_y * sources_x + rows * cols * _sources_per_band(cols, sources_x, band_x)
    right_first = sources_y * sources_x * cols + rows * cols * _sources_per_band(rows, sources_y, band_y)
    first = left_first < right_first
    columns = (kept, r0, r1, c0, c1, s0, s1, t0, t1, first, np.where(first, band_x, band_y))
    return WindowPlan(list(zip(*(c.tolist() for c in columns))), int(np.minimum(left_first, right_first).sum()))


def _band(outputs: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Outputs per band of window axes of ``outputs`` reading ``sources``: :data:`BAND` where a
    band reads at most 1 / :data:`BAND_SAVING` of the sources, else 0 (the axis in one product)."""
    banded = (outputs >= 3 * BAND) & (sources >= BAND_SAVING * _sources_per_band(outputs, sources, BAND))
    return np.where(banded, BAND, 0)


def _sources_per_band(outputs: np.ndarray, sources: np.ndarray, band) -> np.ndarray:
    """About how many of its ``sources`` a band of ``band`` outputs (0: all) of an axis of
    ``outputs`` reads."""
    return np.where(band > 0, np.minimum(sources * band / np.maximum(outputs, 1) + 2, sources), sources)
