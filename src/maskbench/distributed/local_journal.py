"""``maskbench predict`` (one process) writing its frames as it goes, with the Ray path's shards
(:mod:`.shards`): each frame's COCO entries appended to ``OUT/shards/part-NNNN.jsonl`` and fsynced
as soon as it is predicted, merged into ``results.json`` and ``images.json`` at the end (or when
the run stops), so a run killed with ``SIGKILL`` loses at most the frame in progress, and the
same command run again skips the frames already done (each frame once in the merged file).

``OUT/shards/run.json`` names the run (model, weights, runtime, precision, preprocessing, seed,
frames): parts of another run in the folder are replaced, with a line saying so, since predict
always overwrote ``results.json`` (the Ray path, whose parts cost a cluster, refuses them).
:func:`maskbench.predict.predictor.run_predict` takes the journal from the command (``maskbench/cli/main.py``),
so the predict stage does not import this one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..pipeline.coco_results import ImageRecord
from ..utils.errors import MaskbenchError
from .frames import Frame, frames_digest
from .shards import SHARDS, FrameResult, ShardWriter, check_run, latest_records, merge


class ShardJournal:
    """:class:`maskbench.predict.files.FrameJournal` over ``OUT/shards``."""

    def __init__(self, out_dir: Path, say: Callable[[str], None] = print):
        self.out_dir = Path(out_dir)
        self.say = say
        self.writer: ShardWriter | None = None

    @property
    def folder(self) -> Path:
        return self.out_dir / SHARDS

    def start(self, run: Mapping[str, object], paths: Sequence[str]) -> set[int]:
        """Open this run's part; the image ids (1..N over ``paths``) already predicted by an
        earlier run of the same command."""
        frames = [Frame(str(path), image_id=image_id, file_name=str(path)) for image_id, path in enumerate(paths, 1)]
        key = {**run, "frames": frames_digest(frames), "count": len(frames)}
        try:
            check_run(self.out_dir, key)
        except MaskbenchError:
            changed = _changed(self.folder, key)
            shutil.rmtree(self.folder)
            self.say(f"{self.folder}: held the frames of another run (differs in: {changed}); starting over")
            check_run(self.out_dir, key)
        done = {image_id for image_id, record in latest_records(self.out_dir).items() if record.error is None}
        self.writer = ShardWriter(self.out_dir)
        if done:
            self.say(f"resuming: {len(done)} of {len(frames)} frame(s) kept from an earlier run ({self.folder}), "
                     f"{len(frames) - len(done)} to predict")
        return done

    def add(self, record: ImageRecord, entries: list[dict], seconds: float) -> int:
        """Append one frame (fsynced); the bytes its entries take."""
        assert self.writer is not None, "start() first"
        text = json.dumps(entries, allow_nan=False)
        self.writer.add([FrameResult(record, text, "local", seconds)])
        return len(text)

    def merge(self, info: Mapping[str, object]) -> None:
        merge(self.out_dir, info)


def _changed(folder: Path, key: Mapping[str, object]) -> str:
    from .shards import RUN_FILE

    try:
        found = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unreadable run.json"
    return ", ".join(sorted(name for name in set(found) | set(key) if found.get(name) != key.get(name)))
