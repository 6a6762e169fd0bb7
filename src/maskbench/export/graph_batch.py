"""A static batch through a family's export graph (the rig's ``batch`` configuration: the
cameras' simultaneous frames in one call). The dense network runs once on all B images; the
selection (top-k, NMS, masks) runs once per image, unrolled by the trace since B is static, and
each image's four outputs follow one another (``graph_io.output_names(spec, B)``). With B = 1
the graph is the single-image one, node for node."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from torch import Tensor


def per_image(count: int, one: Callable[[int], Sequence[Tensor]]) -> tuple[Tensor, ...]:
    """``one(i)``'s outputs for every image ``i`` of the batch, in order, as one flat tuple."""
    return tuple(tensor for index in range(count) for tensor in one(index))


def image_of(tensors: Sequence[Tensor], index: int, count: int) -> list[Tensor]:
    """Image ``index`` of each batched tensor, keeping the batch axis; the tensors themselves for
    a batch of one (no slice node in a single-image graph)."""
    return list(tensors) if count == 1 else [t[index:index + 1] for t in tensors]


def image_shape(fixed: tuple[int, int] | None, given: Tensor | None, index: int):
    """The resized (h, w) of image ``index``: baked in (stretch), else the graph input
    ``img_shape``, ``[h, w]`` for one image or ``(B, 2)`` for a batch (its 0-d tensors stand for the ints)."""
    if fixed is not None:
        return fixed
    dims = cast(Tensor, given)
    dims = dims if dims.dim() == 1 else dims[index]
    return cast("tuple[int, int]", (dims[0], dims[1]))
