"""What ``predict`` writes, in the order that loses nothing.

Each frame's detections are kept before its overlay is saved, and ``results.json`` and
``images.json`` (atomic: never half a file) are written once at the end, or, when anything
stops the run (Ctrl-C, a full or read-only disk), with every frame predicted until then. With a
:class:`FrameJournal` (the ``predict`` command's: :mod:`maskbench.distributed.local_journal`)
each frame is also appended and fsynced as it is done, and the files are merged from it, so a
``SIGKILL`` loses only the frame in progress and a rerun resumes. A write
error stops the run, since the next frames would fail the same way, as one line saying what
``results.json`` kept and, for a full disk, how much the frames need: measured on the overlays
and results so far (before the first overlay: half the frame's raw size, PNG level 1 on a
photo measured ~0.35).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..pipeline.coco_results import RESULTS_FILE, ImageRecord, write_predictions
from ..report.overlay import save_png
from ..utils.files import space_estimate
from ..utils.write_errors import WriteFailed

RESULTS_BYTES_PER_FRAME = 448 * 1024  # before any frame: 100 RLE masks on 1600x900 (r50, random: 430 KB)
PNG_SHARE_OF_RAW = 0.5


class FrameJournal(Protocol):
    """Frames written as they are done, resumable (:class:`maskbench.distributed.local_journal.ShardJournal`)."""

    @property
    def folder(self) -> Path: ...

    def start(self, run: Mapping[str, object], paths: Sequence[str]) -> set[int]: ...

    def add(self, record: ImageRecord, entries: list[dict], seconds: float) -> int: ...

    def merge(self, info: Mapping[str, object]) -> None: ...


@dataclass
class PredictionFiles:
    out_dir: Path
    info: Mapping[str, object]
    frames: int  # in the whole run
    overlays: bool = True
    journal: FrameJournal | None = None  # None: the COCO files from memory at the end
    kept: int = 0  # frames predicted by an earlier run (journal)
    images: list[ImageRecord] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)  # without a journal
    results_bytes: int = 0  # with a journal
    overlay_sizes: list[int] = field(default_factory=list)  # bytes of each overlay written
    _drawing_bytes: int = 0  # raw size of the overlay being saved

    @contextlib.contextmanager
    def kept_whatever_happens(self) -> Iterator[PredictionFiles]:
        """Around the loop over the frames: the COCO files get every frame predicted, whether
        the loop ends or is stopped; a write error says how many frames they hold."""
        with space_estimate(self.out_dir, self.space_needed):
            try:
                yield self
            except BaseException as stop:
                self.write(after=stop)
                if isinstance(stop, WriteFailed):
                    stop.kept = f"{RESULTS_FILE} holds the {self.predicted()} frame(s) predicted"
                raise
            self.write()

    def add(self, image: ImageRecord, entries: list[dict], seconds: float = 0.0) -> None:
        self.images.append(image)
        if self.journal is None:
            self.results.extend(entries)
        else:
            self.results_bytes += self.journal.add(image, entries, seconds)

    def save_overlay(self, name: str, overlay: np.ndarray) -> None:
        self._drawing_bytes = overlay.nbytes
        path = save_png(self.out_dir / "overlays" / name, overlay)
        self.overlay_sizes.append(path.stat().st_size)

    def write(self, after: BaseException | None = None) -> None:
        """``results.json`` and ``images.json``; ``after``: what stopped the loop (a write error
        is then the one shown, saying the frames are lost)."""
        try:
            if self.journal is None:
                write_predictions(self.out_dir, self.images, self.results, self.info)
            else:
                self.journal.merge(self.info)
        except WriteFailed as failure:
            if after is not None:
                failure.kept = (f"the {self.predicted()} frame(s) predicted were not saved" if self.journal is None
                                else f"{self.journal.folder} holds the {self.predicted()} frame(s) predicted; run the "
                                     "same command again to resume")
            raise

    def predicted(self) -> int:
        """Frames predicted: by this run, and kept from an earlier one."""
        return self.kept + sum(1 for image in self.images if image.error is None)

    def space_needed(self) -> tuple[int, str]:
        """(bytes, what for): the overlays still to write and the results of every frame."""
        done = self.predicted() - self.kept
        written = self.results_bytes if self.journal is not None else len(json.dumps(self.results))
        per_frame = written / done if done and written else RESULTS_BYTES_PER_FRAME
        # with a journal the results are written twice: the frames still to append, then the merged file
        needed = per_frame * (self.frames + (self.frames - self.predicted() if self.journal is not None else 0))
        what = f"the results of {self.frames} frame(s)"
        if self.overlays:
            left = self.frames - len(self.overlay_sizes)
            per_overlay = max(self.overlay_sizes, default=0) or PNG_SHARE_OF_RAW * self._drawing_bytes
            needed += per_overlay * left
            what = f"{left} more overlay(s) and " + what
        return round(needed), what
