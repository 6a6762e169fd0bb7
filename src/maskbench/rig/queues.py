"""Per-camera frame queues with a robot's policy: ``latest`` keeps only the newest frame of each
camera (a frame overtaken before a worker takes it is dropped, and counted), ``all`` keeps every
frame (the queue, and the latency, grow when the model cannot keep up).

Workers take the frame that arrived first among the cameras' heads, so no camera starves."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .pipeline import Frame


class QueuePolicy(str, Enum):
    LATEST = "latest"
    ALL = "all"


@dataclass(frozen=True)
class Offer:
    """A frame as it arrived: ``offered_at`` on the replay clock (seconds)."""

    frame: Frame
    offered_at: float


class CameraQueues:
    """Thread-safe; ``on_drop(offer)`` is called for each frame the ``latest`` policy drops."""

    def __init__(self, cameras: list[str], policy: QueuePolicy, on_drop: Callable[[Offer], None]):
        self.policy = QueuePolicy(policy)
        self._queues: dict[str, deque[Offer]] = {camera: deque() for camera in cameras}
        self._on_drop = on_drop
        self._ready = threading.Condition()
        self._closed = False
        self.max_depth = dict.fromkeys(cameras, 0)

    @property
    def cameras(self) -> list[str]:
        return list(self._queues)

    def offer(self, offer: Offer) -> None:
        dropped = None
        with self._ready:
            queue = self._queues.setdefault(offer.frame.camera, deque())
            self.max_depth.setdefault(offer.frame.camera, 0)
            if self.policy is QueuePolicy.LATEST and queue:
                dropped = queue.popleft()
            queue.append(offer)
            self.max_depth[offer.frame.camera] = max(self.max_depth[offer.frame.camera], len(queue))
            self._ready.notify()
        if dropped is not None:
            self._on_drop(dropped)

    def take(self) -> Offer | None:
        """The oldest head among the cameras, waiting for one; None once closed and empty."""
        with self._ready:
            while True:
                heads = [q for q in self._queues.values() if q]
                if heads:
                    return min(heads, key=lambda q: q[0].offered_at).popleft()
                if self._closed:
                    return None
                self._ready.wait()

    def take_simultaneous(self, gather_s: float, now: Callable[[], float], limit: int) -> list[Offer] | None:
        """One frame per camera (the head of each, oldest first, at most ``limit``): waits until
        ``limit`` cameras have one, or ``gather_s`` after the first arrived, then takes what there
        is; None once closed and empty."""
        with self._ready:
            while True:
                heads = sorted((q for q in self._queues.values() if q), key=lambda q: q[0].offered_at)[:limit]
                if len(heads) >= min(limit, len(self._queues)) or (heads and self._closed):
                    return [q.popleft() for q in heads]
                if heads:
                    wait = heads[0][0].offered_at + gather_s - now()
                    if wait <= 0:
                        return [q.popleft() for q in heads]
                    self._ready.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._ready.wait()

    def close(self) -> None:
        """No more offers: workers drain what is queued, then stop."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def discard(self) -> list[Offer]:
        """Close and empty the queues; the frames never processed are returned."""
        with self._ready:
            self._closed = True
            left = [offer for queue in self._queues.values() for offer in queue]
            for queue in self._queues.values():
                queue.clear()
            self._ready.notify_all()
        return left

    def depth(self) -> int:
        with self._ready:
            return sum(len(q) for q in self._queues.values())
