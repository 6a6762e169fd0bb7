"""N asynchronous OpenVINO streams on ``AsyncInferQueue``: the runtime's own way to keep several
inferences in flight (what ``benchmark_app -hint throughput`` measures), with the frames' decoding
and preprocessing in a feeder thread and their postprocessing in another, both overlapping the
inferences.

The feeder takes a frame only once a request is idle, so frames wait in the camera queues (where
the ``latest`` policy can drop them), never inside OpenVINO."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline.graph_sessions import OPENVINO_DEVICE, PRECISION_HINTS
from .clock import Clock
from .executors import decode, guarded
from .metrics import FrameEvent, Outcome, Recorder
from .pipeline import GraphPipeline
from .queues import CameraQueues, Offer


def streams_config(streams: int | None, threads: int | None = None, precision: str = "fp32") -> dict[str, str]:
    """OpenVINO's CPU config for ``streams`` streams (None: the throughput hint chooses)."""
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
    if streams is not None:
        config["NUM_STREAMS"] = str(int(streams))
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = str(int(threads))
    return config


def compile_streams(model: Any, streams: int | None, threads: int | None = None, precision: str = "fp32",
                    device: str = OPENVINO_DEVICE):
    """``model`` (an ``openvino.Model`` or a path to an IR/ONNX file) compiled for streams."""
    import openvino as ov

    core = ov.Core()
    if isinstance(model, (str, Path)):
        model = core.read_model(str(model))
    return core.compile_model(model, device, streams_config(streams, threads, precision))


class OpenVINOAsyncExecutor:
    """``requests`` infer requests (default: the compiled model's optimal number) over
    ``compiled``; ``pipeline.feeds`` names the inputs, ``pipeline.postprocess`` gets the outputs
    in the order of ``output_names`` (default: the compiled model's)."""

    def __init__(self, compiled: Any, pipeline: GraphPipeline, requests: int | None = None,
                 output_names: Sequence[str] | None = None):
        import openvino as ov

        self.compiled = compiled
        self.pipeline = pipeline
        self.streams = int(compiled.get_property("NUM_STREAMS"))
        self.requests = requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue = ov.AsyncInferQueue(compiled, self.requests)
        self._outputs = [compiled.output(name) for name in output_names] if output_names else list(compiled.outputs)
        self.name = f"openvino-async:{self.streams}"

    def _copy(self, request) -> tuple[np.ndarray, ...]:
        return tuple(request.get_tensor(output).data.copy() for output in self._outputs)

    def warm_up(self, image: np.ndarray) -> None:
        prepared = self.pipeline.preprocess(image)
        done: list[tuple[np.ndarray, ...]] = []
        self._queue.set_callback(lambda request, _: done.append(self._copy(request)))
        for _ in range(self.requests):
            self._queue.start_async(self.pipeline.feeds(prepared))
        self._queue.wait_all()
        self.pipeline.postprocess(done[0], prepared)

    def run(self, queues: CameraQueues, recorder: Recorder, clock: Clock) -> None:
        finished: queue.Queue = queue.Queue()

        def on_done(request, userdata) -> None:
            try:
                finished.put((userdata, clock.now(), self._copy(request)))
            except Exception as err:  # noqa: BLE001 - OpenVINO's thread: hand the error to the replay
                recorder.fail(err)
                queues.discard()

        def post() -> None:
            while (item := finished.get()) is not None:
                (offer, prepared, t0, t1, t2), t3, outputs = item
                self.pipeline.postprocess(outputs, prepared)
                t4 = clock.now()
                recorder.add(FrameEvent(offer.frame.camera, offer.frame.index, offer.offered_at, Outcome.PROCESSED,
                                        t4, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))

        def feed() -> None:
            while True:
                self._queue.get_idle_request_id()  # blocks until a request is free: frames wait in our queues
                offer: Offer | None = queues.take()
                if offer is None:
                    return
                t0 = clock.now()
                image = decode(offer, recorder, clock)
                if image is None:
                    continue
                t1 = clock.now()
                prepared = self.pipeline.preprocess(image)
                t2 = clock.now()
                self._queue.start_async(self.pipeline.feeds(prepared), (offer, prepared, t0, t1, t2))

        self._queue.set_callback(on_done)
        poster = threading.Thread(target=guarded, args=(post, queues, recorder), name="rig-post", daemon=True)
        poster.start()
        try:
            guarded(feed, queues, recorder)
        finally:
            self._queue.wait_all()
            finished.put(None)
            poster.join()
