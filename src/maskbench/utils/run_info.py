"""The run's ``info`` block: which model, weights, preprocessing and runtime made a file of
detections or metrics. Written by predict, evaluate, the Ray engines and a deployed bundle, so
built here once (the earliest stage, standard library only: a torch-free bundle builds it too)."""

from __future__ import annotations

from collections.abc import Sequence

EAGER_TORCH = "torch (eager, cpu)"  # the runtime of a Predictor given none


def run_info(model: str, weights: str, mode: object, input_size: Sequence[int] | None, runtime: str | None,
             weights_sha256: str | None = None) -> dict:
    """``mode``: a resize mode (its ``value``, or the string itself); ``input_size`` None: the
    model's default; ``runtime`` None: eager PyTorch; ``weights_sha256`` where it is known (a
    bundle's manifest names it)."""
    mode_name = getattr(mode, "value", mode)
    return {"model": model, "weights": weights,
            **({"weights_sha256": weights_sha256} if weights_sha256 is not None else {}),
            "preprocessing": f"{mode_name} {input_size or 'default'}",
            "runtime": runtime if runtime is not None else EAGER_TORCH}
