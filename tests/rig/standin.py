"""A stand-in model with a fixed service time and in-memory frames, for the replay tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    camera: str
    stamp_ns: int
    index: int
    source: str
    decode: Callable[[], np.ndarray]


def tiny_image() -> np.ndarray:
    return np.zeros((4, 4, 3), dtype=np.uint8)


def broken() -> np.ndarray:
    raise ValueError("truncated JPEG")


def camera_frames(cameras: int, fps: float, seconds: float, broken_every: int = 0) -> Iterator[Frame]:
    """``cameras`` cameras at ``fps``, stamps simultaneous, merged in stamp order."""
    period_ns = int(1e9 / fps)
    for index in range(int(seconds * fps) + 1):
        for c in range(cameras):
            bad = broken_every and index % broken_every == broken_every - 1
            yield Frame(f"CAM_{c}", index * period_ns, index, f"cam{c}.bag", broken if bad else tiny_image)


class SleepPipeline:
    """``infer`` sleeps ``service_s`` (releasing the GIL, like a runtime's inference)."""

    def __init__(self, service_s: float, batch_size: int = 1, batch_service_s: float | None = None):
        self.service_s = service_s
        self.batch_size = batch_size
        self.batch_service_s = batch_service_s if batch_service_s is not None else service_s

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return image.astype(np.float32)

    def infer(self, prepared: np.ndarray) -> float:
        time.sleep(self.service_s)
        return float(prepared.sum())

    def infer_batch(self, prepared: list[np.ndarray]) -> list[float]:
        assert len(prepared) == self.batch_size
        time.sleep(self.batch_service_s)
        return [float(p.sum()) for p in prepared]

    def postprocess(self, outputs: float, prepared: np.ndarray) -> dict:
        return {"total": outputs}
