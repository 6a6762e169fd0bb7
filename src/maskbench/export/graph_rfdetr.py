"""RF-DETR-Seg as one traceable function: what its exported ONNX graph computes.

The network has no data-dependent branch: backbone, projector, decoder and mask head trace as
they run (deformable attention's sampling is ``grid_sample``: ONNX ``GridSample``, opset >= 16;
the two-stage query selection is ``TopK``). rfdetr's post-processing is inside the graph: the top
``num_select`` (query, class) pairs as ``TopK`` (ties to the lower index, as rfdetr's stable
sort), their boxes in input pixels, labels through the COCO-slot table, and each pair's mask
logits at a quarter of the input. The graph is for its traced square size only, as the model is
(the proposal grid and the window partition are constants of it).

Outputs: ``boxes`` (D, 4), ``scores`` (D,), ``labels`` (D,) (-1: a slot without a COCO class)
and ``mask_logits`` (D, R/4, R/4); D = ``num_select``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..models.rfdetr.detector import RFDETRSegDetector
from .graph_batch import per_image


class RFDETRGraph(nn.Module):
    """One image in, ``(boxes, scores, labels, mask_logits)`` out (a static batch: the network
    once, the selection per image). ``img_shape`` is unused: the input is the stretched square itself."""

    def __init__(self, model: RFDETRSegDetector, img_shape: tuple[int, int] | None) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, img_shape: Tensor | None = None):
        logits, boxes, masks = self.model.network(images)
        size = (images.shape[-2], images.shape[-1])
        return per_image(images.shape[0], lambda i: self.model.select(logits[i], boxes[i], masks[i], size))
