"""A deployment bundle as the replay's pipeline (:mod:`maskbench.rig`): the bundle's own steps
apart (preprocess, graph, postprocess), so ``maskbench rig`` and ``python -m maskbench.deploy
BUNDLE --rig`` time exactly what the robot runs, decoding included.

Streams: ONNX Runtime's session runs calls from several threads at once, so N threads share one
session (each with its share of the threads); an OpenVINO bundle runs on ``AsyncInferQueue`` with
``NUM_STREAMS`` (or the throughput hint). ``batch`` needs a bundle of a static-batch graph
(``export --bundle --batch N``; ``maskbench rig`` builds one with a batch of the source's cameras)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..deploy.engines import OpenVinoEngine
from ..deploy.model import DeployedModel, ImageMeta, load
from ..pipeline.manifest import BundleError, Manifest
from .configs import ConfigKind, ExecConfig
from .executors import BatchExecutor, Executor, StreamsExecutor


@dataclass
class BundleSteps:
    """``preprocess`` -> (feeds, meta); ``infer`` runs the bundle's engine; ``postprocess`` ->
    Detections. ``feeds`` serves OpenVINO's asynchronous queue."""

    model: DeployedModel

    def preprocess(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], ImageMeta]:
        return self.model.prepare(image)

    def feeds(self, prepared: tuple[dict[str, np.ndarray], ImageMeta]) -> dict[str, np.ndarray]:
        return prepared[0]

    def infer(self, prepared: tuple[dict[str, np.ndarray], ImageMeta]) -> tuple[np.ndarray, ...]:
        return self.model.engine(prepared[0])

    def postprocess(self, outputs, prepared: tuple[dict[str, np.ndarray], ImageMeta]):
        return self.model.finish(outputs, prepared[1])

    @property
    def batch_size(self) -> int:
        return self.model.batch

    def infer_batch(self, prepared) -> list[tuple[np.ndarray, ...]]:
        return self.model.infer_batch([feeds for feeds, _ in prepared])


def bundle_executor(folder: Path | str, config: ExecConfig, threads: int | None = None) -> Executor:
    """The executor for ``config`` over the bundle in ``folder`` (checked and compiled by
    :func:`~maskbench.deploy.model.load`); ``threads``: all the streams' threads together."""
    folder = Path(folder)
    if config.kind is ConfigKind.BATCH:
        model = load(folder, threads)
        if model.batch < 2:
            raise BundleError(f"{folder}: the bundle's graph takes one image; --config batch needs a static-batch "
                              "bundle (maskbench export --bundle DIR --batch N), or use sync or streams:N")
        return BatchExecutor(BundleSteps(model))
    if config.kind is ConfigKind.SYNC:
        return StreamsExecutor([BundleSteps(load(folder, threads))], "sync")
    from .openvino_async import OpenVINOAsyncExecutor, streams_config

    def for_streams(manifest: Manifest) -> dict[str, str]:
        return streams_config(config.streams, threads, manifest.precision)

    model = load(folder, _per_stream(threads, config.streams or 1), openvino_config=for_streams)
    m = model.manifest
    if isinstance(model.engine, OpenVinoEngine):  # compiled once, for the streams, by load
        return OpenVINOAsyncExecutor(model.engine.compiled, BundleSteps(model), output_names=m.output_names)
    streams = config.streams or os.cpu_count() or 1
    steps = BundleSteps(model)  # one session, called from every stream's thread
    return StreamsExecutor([steps] * streams, f"streams:{streams}")


def _per_stream(threads: int | None, streams: int) -> int:
    return max(1, (threads or os.cpu_count() or 1) // streams)
