"""How frames go through the model: one synchronous stream, N streams in threads, or one
static batch of the cameras' simultaneous frames. Each executor takes frames from the camera
queues until they are closed and empty, and records one event per frame.

Decoding, preprocessing and postprocessing run inside the executor, so they count in the
latency; with several streams one stream's decoding overlaps another's inference (ONNX Runtime
and OpenVINO release the GIL while they infer, as do torch's kernels)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..utils.errors import one_line
from .clock import Clock
from .metrics import FrameEvent, Outcome, Recorder
from .pipeline import BatchPipeline, Pipeline
from .queues import CameraQueues, Offer


class Executor(Protocol):
    """``name`` describes the configuration (``sync``, ``streams:2``, ``batch:3``...)."""

    @property
    def name(self) -> str: ...

    def warm_up(self, image: np.ndarray) -> None:
        """Run every stream once (compilation, first-call allocations) before the clock starts."""

    def run(self, queues: CameraQueues, recorder: Recorder, clock: Clock) -> None:
        """Process until ``queues`` is closed and empty; a model step that raises is recorded
        with ``recorder.fail`` and ends the run."""


def decode(offer: Offer, recorder: Recorder, clock: Clock) -> np.ndarray | None:
    """The frame's image, or None after recording its decode failure (the run goes on)."""
    try:
        return offer.frame.decode()
    except Exception as err:  # noqa: BLE001 - any corrupt frame is counted, whatever the decoder raised
        frame = offer.frame
        recorder.add(FrameEvent(frame.camera, frame.index, offer.offered_at, Outcome.DECODE_FAILED, clock.now(),
                                error=f"{frame.source} #{frame.index}: {one_line(err)}"))
        return None


def process(pipeline: Pipeline, offer: Offer, recorder: Recorder, clock: Clock) -> None:
    t0 = clock.now()
    image = decode(offer, recorder, clock)
    if image is None:
        return
    t1 = clock.now()
    prepared = pipeline.preprocess(image)
    t2 = clock.now()
    outputs = pipeline.infer(prepared)
    t3 = clock.now()
    pipeline.postprocess(outputs, prepared)
    t4 = clock.now()
    recorder.add(FrameEvent(offer.frame.camera, offer.frame.index, offer.offered_at, Outcome.PROCESSED, t4,
                            (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))


def guarded(work, queues: CameraQueues, recorder: Recorder) -> None:
    """Run ``work``; on an error record it and empty the queues so the whole run stops."""
    try:
        work()
    except Exception as err:  # noqa: BLE001 - reported by the replay as one line
        recorder.fail(err)
        queues.discard()


class StreamsExecutor:
    """One thread per pipeline, each taking the oldest queued frame. Give each stream its own
    pipeline where the model's call is not thread-safe (one OpenVINO infer request each); an ONNX
    Runtime session may be shared. One pipeline is the synchronous configuration."""

    def __init__(self, pipelines: Sequence[Pipeline], name: str | None = None):
        if not pipelines:
            raise ValueError("at least one pipeline")
        self.pipelines = list(pipelines)
        self.name = name or ("sync" if len(self.pipelines) == 1 else f"streams:{len(self.pipelines)}")

    def warm_up(self, image: np.ndarray) -> None:
        for pipeline in self.pipelines:
            prepared = pipeline.preprocess(image)
            pipeline.postprocess(pipeline.infer(prepared), prepared)

    def run(self, queues: CameraQueues, recorder: Recorder, clock: Clock) -> None:
        def stream(pipeline: Pipeline) -> None:
            while (offer := queues.take()) is not None:
                process(pipeline, offer, recorder, clock)

        threads = [threading.Thread(target=guarded, args=(lambda p=p: stream(p), queues, recorder),
                                    name=f"rig-stream-{i}", daemon=True) for i, p in enumerate(self.pipelines)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def sync_executor(pipeline: Pipeline) -> StreamsExecutor:
    return StreamsExecutor([pipeline], "sync")


class BatchExecutor:
    """The cameras' simultaneous frames as one static batch: waits until every camera has a
    frame (or ``gather_s`` after the first of them arrived), decodes and preprocesses each,
    pads a short batch by repeating its last input (outputs of the padding are discarded), runs
    ``infer_batch`` once and postprocesses each frame; all of the batch finish together."""

    def __init__(self, pipeline: BatchPipeline, gather_s: float = 0.04):
        self.pipeline = pipeline
        self.gather_s = gather_s
        self.name = f"batch:{pipeline.batch_size}"

    def warm_up(self, image: np.ndarray) -> None:
        prepared = self.pipeline.preprocess(image)
        self.pipeline.infer_batch([prepared] * self.pipeline.batch_size)

    def run(self, queues: CameraQueues, recorder: Recorder, clock: Clock) -> None:
        guarded(lambda: self._loop(queues, recorder, clock), queues, recorder)

    def _loop(self, queues: CameraQueues, recorder: Recorder, clock: Clock) -> None:
        size = self.pipeline.batch_size
        while (offers := queues.take_simultaneous(self.gather_s, clock.now, size)) is not None:
            t0 = clock.now()
            ready: list[tuple[Offer, Any]] = []
            for offer in offers:
                image = decode(offer, recorder, clock)
                if image is not None:
                    ready.append((offer, self.pipeline.preprocess(image)))
            if not ready:
                continue
            t1 = clock.now()
            inputs = [prepared for _, prepared in ready]
            inputs += [inputs[-1]] * (size - len(inputs))
            outputs = self.pipeline.infer_batch(inputs)
            t2 = clock.now()
            for (_, prepared), output in zip(ready, outputs):
                self.pipeline.postprocess(output, prepared)
            t3 = clock.now()
            pre = (t1 - t0) / len(ready)  # decode and preprocess of the batch, shared out (decode not apart)
            for offer, _ in ready:
                recorder.add(FrameEvent(offer.frame.camera, offer.frame.index, offer.offered_at, Outcome.PROCESSED,
                                        t3, (0.0, pre, t2 - t1, (t3 - t2) / len(ready))))
