"""Official RF-DETR-Seg checkpoints (``rf-detr-seg-*-ft.pth``) read without running pickled code.

rfdetr saves ``{"model": state_dict, "args": argparse.Namespace, ...}``. The safe loader
(:mod:`maskbench.weights.safe_load`) refuses every global it does not know; here the two
namespace classes rfdetr's own loader allows are let through as inert stand-ins, so the
arguments decode as data and nothing in the file is executed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ...utils.errors import CheckpointError
from ...weights.safe_load import _inert_class, _normalise_state_dict, load_checkpoint_file
from ...zoo.rfdetr_sizes import RFDETRSegSize, get_size
from .model import RFDETRSeg

TRAINING_ARGUMENT_GLOBALS = ("argparse.Namespace", "types.SimpleNamespace")
# rfdetr's keypoint-schema buffer: empty for seg models, absent from older checkpoints
IGNORED_KEYS = frozenset({"_kp_active_mask"})


def load_rfdetr_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of an rfdetr checkpoint (its ``"model"`` entry), of one maskbench saved
    (``"state_dict"``), or a bare state dict."""
    path = Path(path)
    stand_ins: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (_inert_class(name), name) for name in TRAINING_ARGUMENT_GLOBALS]
    with torch.serialization.safe_globals(stand_ins):
        checkpoint = load_checkpoint_file(path)
    weights = None
    if isinstance(checkpoint, dict):  # rfdetr's {"model": ...}, maskbench's {"state_dict": ...}, or bare
        weights = next((checkpoint[key] for key in ("model", "state_dict") if key in checkpoint), checkpoint)
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(f"{path}: no 'model' weights in this checkpoint; use an rfdetr RF-DETR-Seg .pth")
    return _normalise_state_dict({k: v for k, v in weights.items() if k not in IGNORED_KEYS}, path)


def load_model(size: RFDETRSegSize | str, checkpoint: Path, dtype: torch.dtype = torch.float32) -> RFDETRSeg:
    """The size's network with a checkpoint's weights, in eval mode. A checkpoint of another
    size (or another model) is refused in one line naming what does not fit."""
    size = get_size(size) if isinstance(size, str) else size
    weights = load_rfdetr_state_dict(checkpoint)
    with torch.device("meta"):
        model = RFDETRSeg(size)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    wrong = sorted(k for k in expected if k in weights and tuple(weights[k].shape) != expected[k])
    if missing or wrong:
        first = (missing or wrong)[0]
        raise CheckpointError(f"{checkpoint}: not an {size.alias} checkpoint ({len(missing)} weights missing, "
                              f"{len(wrong)} of another shape, e.g. '{first}'); use {size.checkpoint_url}")
    model.load_state_dict({k: weights[k].to(dtype) for k in expected}, assign=True)
    return model.eval()
