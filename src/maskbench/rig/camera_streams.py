"""What a rig replay consumes: camera frames on a clock, from any source (bag, folder, embedded).

A source is a set of :class:`Track` s, one per camera: a nominal rate, a frame count and a way to
read one pass of the camera's frames (recorded stamp, label, undecoded payload). A
:class:`CameraStreams` merges the tracks into one stamp-ordered, lazy stream of
:class:`CameraFrame` s, optionally looped and cut to a duration, so a bag of any size is read a
frame at a time and the same source can be replayed for each trial of a capacity search.

Frames are not decoded here: :attr:`CameraFrame.decode` runs in the replay pipeline, where its cost
belongs to the frame's latency.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from maskbench.errors import ImageError, MaskbenchError

NS_PER_S = 1_000_000_000


class SourceError(MaskbenchError):
    """A source that cannot be replayed (corrupt bag, no image topic, unknown topic, unsupported
    encoding, folder without timestamps or images): one line naming the file or topic and the fix,
    raised when the source is opened, before any model work."""


class FrameDecodeError(ImageError):
    """One frame whose pixels cannot be decoded (a corrupt JPEG inside a bag, a truncated raw
    image): raised by :attr:`CameraFrame.decode`, so the replay counts the frame and goes on."""


class SourceKind(Enum):
    ROS2_BAG = "rosbag2"
    ROS1_BAG = "rosbag1"
    NUSCENES = "nuscenes"
    IMAGE_FOLDER = "image-folder"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class CameraFrame:
    """One frame as it arrives from a camera.

    ``stamp_ns``: arrival time on the replay clock, nanoseconds after the stream's first frame
    (recorded stamps shifted by :attr:`CameraStreams.origin_ns`, plus the loop offset).
    ``index``: the frame's number within its camera (0, 1, ...; it keeps counting across loops).
    ``source``: where the pixels are (a file, or ``bag:topic#n``), for error messages and records.
    ``decode()``: the frame as HxWx3 uint8 RGB (what :mod:`maskbench.preprocess` takes); raises
    :class:`FrameDecodeError` for a frame that cannot be decoded.
    """

    camera: str
    stamp_ns: int
    index: int
    source: str
    decode: Callable[[], np.ndarray]


@dataclass(frozen=True)
class RecordedFrame:
    """What a track reads for one frame: its recorded stamp (ns, the source's own clock), where
    it is, and its decoder."""

    stamp_ns: int
    source: str
    decode: Callable[[], np.ndarray]


@dataclass(frozen=True)
class Track:
    """One camera of a source: ``read()`` yields one pass of its frames in recorded order."""

    camera: str
    rate_hz: float
    count: int
    first_stamp_ns: int
    read: Callable[[], Iterator[RecordedFrame]]

    @property
    def pass_ns(self) -> float:
        """A pass at the nominal rate: ``count`` frame intervals (the last frame's interval
        included, so a looped camera keeps its rate across the seam). Not rounded: pass k is shifted
        by ``round(k * pass_ns)``, so 12 Hz stays 12 frames a second however long the replay."""
        return self.count * NS_PER_S / self.rate_hz


@dataclass(frozen=True)
class CameraStreams:
    """The cameras of one source, merged on one clock.

    ``origin``: what was opened, for records and messages. ``loop``: start again after the last
    frame (each pass shifted by :attr:`loop_period_ns`); ``duration_ns``: stop before this time
    on the replay clock (None: one pass, or forever when looping).
    """

    kind: SourceKind
    origin: str
    tracks: tuple[Track, ...]
    loop: bool = False
    duration_ns: int | None = None

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(track.camera for track in self.tracks)

    @property
    def rates_hz(self) -> dict[str, float]:
        """The nominal frame rate of each camera."""
        return {track.camera: track.rate_hz for track in self.tracks}

    @property
    def origin_ns(self) -> int:
        """The recorded stamp that is time 0 on the replay clock: the earliest first frame."""
        return min(track.first_stamp_ns for track in self.tracks)

    @property
    def loop_period_ns(self) -> float:
        """The shift between passes: the longest camera's pass at its nominal rate, so that every
        camera's frames stay in order and a one-frame-per-camera source cycles at its rate."""
        return max(track.pass_ns for track in self.tracks)

    def limited(self, duration_s: float | None, loop: bool = True) -> CameraStreams:
        """The same cameras, looped (or not) and cut at ``duration_s`` seconds (None: no cut)."""
        duration_ns = None if duration_s is None else round(duration_s * NS_PER_S)
        if duration_ns is not None and duration_ns <= 0:
            raise SourceError(f"{self.origin}: a replay duration must be positive, not {duration_s} s")
        return replace(self, loop=loop, duration_ns=duration_ns)

    def with_cameras(self, count: int) -> CameraStreams:
        """``count`` cameras for a capacity search: the first ``count`` of the source's, then copies
        of them in turn (``CAM_FRONT~1``, ...), each firing with the camera it copies."""
        if count < 1:
            raise SourceError(f"{self.origin}: a replay needs at least one camera, not {count}")
        known = len(self.tracks)
        tracks = tuple(
            replace(track, camera=track.camera if copy == 0 else f"{track.camera}~{copy}")
            for number in range(count)
            for copy, track in [(number // known, self.tracks[number % known])]
        )
        return replace(self, tracks=tracks)

    def scaled_rate(self, factor: float) -> CameraStreams:
        """Every camera ``factor`` times faster (its clock compressed about the origin), for a
        search over the frame rate; the frames and their order stay the same."""
        if not factor > 0:
            raise SourceError(f"{self.origin}: a rate factor must be positive, not {factor}")
        origin = self.origin_ns
        return replace(self, tracks=tuple(_scaled(track, factor, origin) for track in self.tracks))

    def frames(self) -> Iterator[CameraFrame]:
        """All cameras' frames in stamp order (ties: camera order), read lazily; each call starts
        a fresh replay from time 0."""
        rank = {camera: position for position, camera in enumerate(self.cameras)}
        merged = heapq.merge(
            *(self._camera_frames(track) for track in self.tracks),
            key=lambda frame: (frame.stamp_ns, rank[frame.camera]),
        )
        for frame in merged:
            if self.duration_ns is not None and frame.stamp_ns >= self.duration_ns:
                return
            yield frame

    def _camera_frames(self, track: Track) -> Iterator[CameraFrame]:
        """One camera on the replay clock; stamps never go back (a recorded stamp earlier than its
        predecessor's arrives with it), so the camera's arrivals stay ordered."""
        origin, period = self.origin_ns, self.loop_period_ns
        index, last, passes = 0, 0, 0
        while True:
            shift = round(passes * period)
            for recorded in track.read():
                stamp = max(recorded.stamp_ns - origin + shift, last)
                if self.duration_ns is not None and stamp >= self.duration_ns:
                    return
                yield CameraFrame(track.camera, stamp, index, recorded.source, recorded.decode)
                index, last = index + 1, stamp
            if not self.loop or index == 0:
                return
            passes += 1


def _scaled(track: Track, factor: float, origin_ns: int) -> Track:
    def read() -> Iterator[RecordedFrame]:
        for recorded in track.read():
            yield replace(recorded, stamp_ns=origin_ns + round((recorded.stamp_ns - origin_ns) / factor))

    first = origin_ns + round((track.first_stamp_ns - origin_ns) / factor)
    return replace(track, rate_hz=track.rate_hz * factor, first_stamp_ns=first, read=read)
