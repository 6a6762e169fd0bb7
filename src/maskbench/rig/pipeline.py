"""What the replay engine needs from a frame and from a model, as protocols: the sources
(:mod:`maskbench.rig.sources`) give frames, a runtime or a deployment bundle gives the steps.

A frame is decoded lazily (``decode()``) inside the pipeline, so decoding counts in the latency
and overlaps with inference exactly where preprocessing does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np


class Frame(Protocol):
    """A camera frame as the sources yield it (their ``CameraFrame``): ``decode()`` returns an
    HxWx3 uint8 RGB image or raises on a corrupt frame."""

    @property
    def camera(self) -> str: ...

    @property
    def stamp_ns(self) -> int: ...

    @property
    def index(self) -> int: ...

    @property
    def source(self) -> str: ...

    @property
    def decode(self) -> Callable[[], np.ndarray]: ...


class Pipeline(Protocol):
    """One image through a model: ``postprocess(infer(preprocess(image)), prepared)``.
    ``prepared`` is whatever ``preprocess`` returned (the graph's inputs and the resize meta)."""

    def preprocess(self, image: np.ndarray) -> Any: ...

    def infer(self, prepared: Any) -> Any: ...

    def postprocess(self, outputs: Any, prepared: Any) -> Any: ...


class BatchPipeline(Pipeline, Protocol):
    """A pipeline whose graph also takes a static batch: ``infer_batch`` gets exactly
    ``batch_size`` prepared inputs (the executor pads a short batch) and returns one output each."""

    @property
    def batch_size(self) -> int: ...

    def infer_batch(self, prepared: Sequence[Any]) -> Sequence[Any]: ...


class GraphPipeline(Pipeline, Protocol):
    """A pipeline whose inference is one graph call on named arrays: what OpenVINO's
    ``AsyncInferQueue`` runs in place of ``infer``; outputs come back in the graph's order."""

    def feeds(self, prepared: Any) -> dict[str, np.ndarray]: ...

    def postprocess(self, outputs: Any, prepared: Any) -> Any: ...

