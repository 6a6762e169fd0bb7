"""RF-DETR-Seg (Roboflow, Apache-2.0) in plain PyTorch, computing what ``rfdetr`` 1.11.2 computes.

- :mod:`.sizes`: the six sizes as plain data (``SIZES``, ``get_size``);
- :mod:`.model`: ``RFDETRSeg(size)`` (forward: normalised images -> logits, boxes, mask logits),
  ``RawOutputs``, ``random_model``;
- :mod:`.postprocess`: ``preprocess``, ``select`` (top-k + boxes), ``upsample_masks``,
  ``slot_to_label``, ``to_detections``;
- :mod:`.checkpoint`: ``load_model`` / ``load_rfdetr_state_dict`` for the official checkpoints;
- :mod:`.random_weights`: the deterministic random weights of the parity fixtures.
See docs/rfdetr.md.
"""

from ...zoo.rfdetr_sizes import SIZES, RFDETRSegSize, get_size
from .checkpoint import load_model, load_rfdetr_state_dict
from .model import RawOutputs, RFDETRSeg, random_model
from .postprocess import Selection, preprocess, select, slot_to_label, to_detections, upsample_masks

__all__ = [
    "SIZES", "RFDETRSeg", "RFDETRSegSize", "RawOutputs", "Selection", "get_size", "load_model",
    "load_rfdetr_state_dict", "preprocess", "random_model", "select", "slot_to_label", "to_detections",
    "upsample_masks",
]
