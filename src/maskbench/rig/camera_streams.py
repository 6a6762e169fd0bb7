"""What a rig replay consumes: camera frames on a clock, from any source (bag, folder, embedded).

A source is its cameras (:class:`Track`: name, nominal rate, frame count, first stamp) and a way to
read one pass over all of them in recorded-stamp order (one reader per pass, so a bag is read
once, not once per camera). A :class:`CameraStreams` turns passes into one lazy stream of
:class:`CameraFrame` s on the replay clock, optionally looped and cut to a duration, so a bag of
any size is read a frame at a time and the same source can be replayed for each trial of a
capacity search.

Frames are not decoded here: :attr:`CameraFrame.decode` runs in the replay pipeline, where its cost
belongs to the frame's latency.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from maskbench.utils.errors import ImageError, MaskbenchError

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
    ``decode()``: the frame as HxWx3 uint8 RGB (what :mod:`maskbench.pipeline.preprocess` takes); raises
    :class:`FrameDecodeError` for a frame that cannot be decoded.
    """

    camera: str
    stamp_ns: int
    index: int
    source: str
    decode: Callable[[], np.ndarray]


@dataclass(frozen=True)
class RecordedFrame:
    """What a source reads for one frame: its camera (a position in the source's tracks), its
    recorded stamp (ns, the source's own clock), where it is, and its decoder."""

    track: int
    stamp_ns: int
    source: str
    decode: Callable[[], np.ndarray]


# One pass over all of a source's cameras, in recorded-stamp order (ties: track order).
PassReader = Callable[[], Iterator[RecordedFrame]]
# A pass's next frame waiting to be given: (replay stamp, track, pass number, the pass's shift,
# the frame, the rest of the pass); one per open pass, so the pass number breaks every tie.
_Pending = tuple[int, int, int, int, "RecordedFrame", Iterator["RecordedFrame"]]


@dataclass(frozen=True)
class Track:
    """One camera of a source: its name, nominal rate, frames per pass and first recorded stamp."""

    camera: str
    rate_hz: float
    count: int
    first_stamp_ns: int

    @property
    def pass_ns(self) -> float:
        """A pass at the nominal rate: ``count`` frame intervals (the last frame's interval
        included, so a looped camera keeps its rate across the seam). Not rounded: pass k is shifted
        by ``round(k * pass_ns)``, so 12 Hz stays 12 frames a second however long the replay."""
        return self.count * NS_PER_S / self.rate_hz


@dataclass(frozen=True)
class CameraStreams:
    """The cameras of one source, merged on one clock.

    ``origin``: what was opened, for records and messages. ``read_pass``: one pass of recorded
    frames. ``loop``: start again after the last frame (pass k shifted by ``round(k *
    loop_period_ns)``); ``duration_ns``: stop before this time on the replay clock (None: one pass,
    or forever when looping).
    """

    kind: SourceKind
    origin: str
    tracks: tuple[Track, ...]
    read_pass: PassReader
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
        camera keeps its order and a one-frame-per-camera source cycles at its rate."""
        return max(track.pass_ns for track in self.tracks)

    def limited(self, duration_s: float | None, loop: bool = True) -> CameraStreams:
        """The same cameras, looped (or not) and cut at ``duration_s`` seconds (None: no cut)."""
        duration_ns = None if duration_s is None else round(duration_s * NS_PER_S)
        if duration_ns is not None and duration_ns <= 0:
            raise SourceError(f"{self.origin}: a replay duration must be positive, not {duration_s} s")
        return replace(self, loop=loop, duration_ns=duration_ns)

    def with_cameras(self, count: int) -> CameraStreams:
        """``count`` cameras for a capacity search: the first ``count`` of the source's, then copies
        of them in turn (``CAM_FRONT~1``, ...), each firing with the camera it copies and decoding
        its own copy of the frame."""
        if count < 1:
            raise SourceError(f"{self.origin}: a replay needs at least one camera, not {count}")
        known = len(self.tracks)
        tracks = tuple(
            replace(track, camera=track.camera if copy == 0 else f"{track.camera}~{copy}")
            for number in range(count)
            for copy, track in [(number // known, self.tracks[number % known])]
        )
        return replace(self, tracks=tracks, read_pass=_copied(self.read_pass, known, count))

    def scaled_rate(self, factor: float) -> CameraStreams:
        """Every camera ``factor`` times faster (its clock compressed about the origin), for a
        search over the frame rate; the frames and their order stay the same."""
        if not factor > 0:
            raise SourceError(f"{self.origin}: a rate factor must be positive, not {factor}")
        origin = self.origin_ns

        def scaled(stamp: int) -> int:
            return origin + round((stamp - origin) / factor)

        def read_pass() -> Iterator[RecordedFrame]:
            for recorded in self.read_pass():
                yield replace(recorded, stamp_ns=scaled(recorded.stamp_ns))

        tracks = tuple(
            replace(track, rate_hz=track.rate_hz * factor, first_stamp_ns=scaled(track.first_stamp_ns))
            for track in self.tracks
        )
        return replace(self, tracks=tracks, read_pass=read_pass)

    def frames(self) -> Iterator[CameraFrame]:
        """All cameras' frames in stamp order (ties: camera order), read lazily; each call starts
        a fresh replay from time 0.

        Passes are merged as they overlap: pass k+1 is opened once every frame before its start
        has been given, so a camera that starts late in the recording still arrives in order. A
        recorded stamp earlier than the frame before it (a camera whose clock stepped back) arrives
        right after that frame: arrivals never go back.
        """
        origin, period = self.origin_ns, self.loop_period_ns
        passes: list[_Pending] = []  # a heap: the next frame of each open pass
        next_pass, indexes, last = 0, [0] * len(self.tracks), 0
        while True:
            next_start = round(next_pass * period)
            if (next_pass == 0 or self.loop) and (not passes or passes[0][0] >= next_start):
                if self._push_next(passes, self.read_pass(), next_pass, next_start - origin):
                    next_pass += 1
                    continue
                if next_pass > 0:  # an empty pass: the source has no frames any more
                    return
                next_pass += 1
                continue
            if not passes:
                return
            stamp, track, number, shift, recorded, rest = heapq.heappop(passes)
            stamp = max(stamp, last)
            if self.duration_ns is not None and stamp >= self.duration_ns:
                return
            yield CameraFrame(self.tracks[track].camera, stamp, indexes[track], recorded.source, recorded.decode)
            indexes[track] += 1
            last = stamp
            self._push_next(passes, rest, number, shift)

    @staticmethod
    def _push_next(
        passes: list[_Pending],
        frames: Iterator[RecordedFrame],
        number: int,
        shift: int,
    ) -> bool:
        """Put the next frame of pass ``number`` (its stamps moved by ``shift``) on the heap."""
        recorded = next(frames, None)
        if recorded is None:
            return False
        heapq.heappush(passes, (recorded.stamp_ns + shift, recorded.track, number, shift, recorded, frames))
        return True


def _copied(read_pass: PassReader, known: int, count: int) -> PassReader:
    """A pass where track j (of ``count``) gets every frame of source track ``j % known``."""

    def read() -> Iterator[RecordedFrame]:
        for recorded in read_pass():
            for track in range(recorded.track, count, known):
                yield replace(recorded, track=track)

    return read


def merged_pass(per_track: list[list[tuple[int, str, Callable[[], np.ndarray]]]]) -> PassReader:
    """A pass reader over known per-camera lists of (stamp, source, decoder), for file sources."""

    def camera(track: int) -> Iterator[RecordedFrame]:
        for stamp, source, decode in per_track[track]:
            yield RecordedFrame(track, stamp, source, decode)

    def read() -> Iterator[RecordedFrame]:
        cameras = [camera(track) for track in range(len(per_track))]
        return heapq.merge(*cameras, key=lambda recorded: (recorded.stamp_ns, recorded.track))

    return read
