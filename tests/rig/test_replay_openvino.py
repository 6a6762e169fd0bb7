"""The OpenVINO executor on AsyncInferQueue, with a tiny model built in the test: every frame's
outputs reach its own postprocessing, with explicit streams and with the throughput hint."""

from __future__ import annotations

import numpy as np
import pytest

from maskbench.rig.energy import EnergyMeters
from maskbench.rig.queues import QueuePolicy
from maskbench.rig.replay import ReplayOptions, replay

from .standin import Frame

ov = pytest.importorskip("openvino")


def tiny_model():
    from openvino import opset13 as ops

    image = ops.parameter([1, 3, 4, 4], np.float32, name="image")
    total = ops.reduce_sum(ops.relu(image), ops.constant(np.array([1, 2, 3], dtype=np.int64)), keep_dims=False)
    total.output(0).get_tensor().set_names({"total"})
    return ov.Model([total], [image], "tiny")


class SumPipeline:
    """The frame's value comes back through the graph: 3 x 4 x 4 x value."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], float] = {}

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return image.transpose(2, 0, 1)[None].astype(np.float32)

    def feeds(self, prepared: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": prepared}

    def infer(self, prepared: np.ndarray):
        raise AssertionError("the async executor runs the graph itself")

    def postprocess(self, outputs, prepared: np.ndarray) -> float:
        (total,) = outputs
        assert float(total[0]) == pytest.approx(float(prepared.sum()))
        self.seen[(int(prepared[0, 0, 0, 0]), int(prepared[0, 1, 0, 0]))] = float(total[0])
        return float(total[0])


def frames(cameras: int, count: int):
    for index in range(count):
        for c in range(cameras):
            image = np.full((4, 4, 3), index % 200, dtype=np.uint8)
            image[..., 1] = c
            yield Frame(f"CAM_{c}", index * 50_000_000, index, "mem", lambda image=image: image)


@pytest.mark.parametrize("streams", [2, None])
def test_async_infer_queue_processes_every_frame_with_its_own_outputs(streams):
    from maskbench.rig.openvino_async import OpenVINOAsyncExecutor, compile_streams

    pipeline = SumPipeline()
    compiled = compile_streams(tiny_model(), streams, threads=2)
    executor = OpenVINOAsyncExecutor(compiled, pipeline)
    assert executor.name == f"openvino-async:{executor.streams}" and executor.requests >= 1
    if streams:
        assert executor.streams == 2
    # every frame kept (queue all) and a loose deadline: this checks outputs, not capacity
    result = replay(frames(3, 20), executor, ReplayOptions(1.0, queue=QueuePolicy.ALL, deadline_ms=5000),
                    meters=EnergyMeters.none())
    assert result.overall.offered == 60 and result.overall.processed == 60
    assert result.overall.miss_share == 0.0
    assert {(i, c) for i in range(20) for c in range(3)} <= set(pipeline.seen)
    assert result.overall.stages_ms["infer"] >= 0
