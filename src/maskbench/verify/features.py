"""Feature taps: the five FPN outputs (P2..P6) of one input, as a runtime computes them.

Why: a Mask R-CNN with random weights is chaotic (1e-3 relative noise on the input already
moves the FPN features by 10-20%, and bf16 features at cosine 0.98 change most of the 100
detections), so detections say nothing about a reduced precision's or a conversion's cost
without trained weights. The FPN outputs can: they are the last dense tensors before the
data-dependent part (proposals, NMS, top-k), compared with fp32 eager by cosine and relative
error (:func:`compare_features`).

How each runtime gives them, in its own precision, is the runtime's own
:meth:`~maskbench.runtimes.base.Runtime.feature_tap`:

- ``torch`` / ``torch-compile``: the runtime's own ``model.extract_features``, i.e. its private
  copy wrapped in bf16 autocast or cast to fp16, and compiled for ``torch-compile``; outputs
  cast to float32.
- ONNX Runtime / OpenVINO: the very file the runtime compiled (the fp32 export, or the int8
  artifact for int8) compiled a second time by the runtime (same threads, precision hint,
  providers) with the FPN tensors added as graph outputs
  (:class:`~maskbench.runtimes.exported.GraphTap`). The names are found in the fp32 export
  (:func:`~maskbench.runtimes.feature_names.fpn_tensor_names`); the quantized files keep them.
- TensorRT: not available (untested here; an engine with extra outputs is a second build).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..models.factory import LoadedModel
from ..runtimes.base import Runtime
from ..utils.errors import MaskbenchError


def reference_features(loaded: LoadedModel, images: torch.Tensor) -> list[np.ndarray]:
    """P2..P6 of fp32 eager PyTorch (``loaded.model``), float32."""
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        return [f.float().cpu().numpy() for f in loaded.model.extract_features(images.to(device))]


def eager_outputs(loaded: LoadedModel, images: torch.Tensor, img_shape: tuple[int, int]):
    """fp32 eager's detections (``RawDetections``) and P2..P6 from ONE forward pass: the FPN
    outputs are caught by a hook on ``model.neck`` (what ``extract_features`` returns)."""
    model = loaded.model
    caught: list[list[np.ndarray]] = []
    def catch(module, args, outputs) -> None:  # a list of levels, or one tensor (a one-level neck)
        levels = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        caught.append([f.float().cpu().numpy() for f in levels])

    handle = model.neck.register_forward_hook(catch)
    try:
        with torch.inference_mode():
            raw = model(images.to(next(model.parameters()).device), [tuple(img_shape)])[0]
    finally:
        handle.remove()
    return raw, caught[0]


def feature_tap(runtime: Runtime):
    """The runtime's tap, ``tap(images (1,3,H,W), img_shape) -> [P2..P6]`` (float32 NumPy);
    raises :class:`~maskbench.runtimes.base.FeatureTapUnavailable` (one line) where there is none.
    Graph runtimes compile their tap once per input size, on first use."""
    return runtime.feature_tap()


def compare_features(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """Per level: (cosine similarity, relative error ``||candidate - reference|| / ||reference||``),
    computed in float64 over the whole tensor."""
    result = []
    for want, got in zip(reference, candidate):
        want = np.asarray(want, np.float64).ravel()
        got = np.asarray(got, np.float64).ravel()
        if want.shape != got.shape:
            raise MaskbenchError(f"feature shapes differ: {want.shape} vs {got.shape}")
        norms = np.linalg.norm(want) * np.linalg.norm(got)
        cosine = float(want @ got / norms) if norms > 0 else float(np.array_equal(want, got))
        reference_norm = np.linalg.norm(want)
        error = float(np.linalg.norm(got - want) / reference_norm) if reference_norm > 0 else float(
            np.linalg.norm(got))
        result.append((cosine, error))
    return result
