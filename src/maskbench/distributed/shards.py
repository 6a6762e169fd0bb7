"""Results written as they arrive, so a stopped run loses no finished frame and resumes.

The driver (never an actor) appends each batch's frames to ``OUT/shards/part-NNNN.jsonl``, one
JSON line per frame (its :class:`ImageRecord`, its COCO entries, the actor and its seconds),
with :func:`maskbench.utils.files.append_line` (one write + fsync per batch: whole lines or none). Each
run opens a new part, so a torn line can only end a part, and readers skip it. ``run.json``
beside the parts says which model and frames they are of: a rerun over other frames or another
model is refused rather than mixed in.

:func:`merge` writes predict's ``results.json`` and ``images.json`` from the parts, each frame
once, in image id order: its latest successful line, else its latest failure. It reads the
entries back frame by frame, so the merged file never has to fit in memory.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from ..pipeline.coco_results import IMAGES_FILE, RESULTS_FILE, ImageRecord, images_dataset, write_json_atomic
from ..utils.errors import MaskbenchError
from ..utils.files import append_line, atomic_open

SHARDS = "shards"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class FrameResult:
    """One frame as an actor returns it: ``entries`` is the COCO entries' JSON text (RLE masks)."""

    record: ImageRecord
    entries: str
    actor: str
    seconds: float
    ended_at: float = 0.0  # the actor's wall clock when the frame was done

    def line(self) -> str:
        return json.dumps({"record": asdict(self.record), "actor": self.actor, "seconds": self.seconds,
                           "ended_at": self.ended_at, "entries": json.loads(self.entries)}, allow_nan=False)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


class ShardWriter:
    """This run's part file; :meth:`add` appends a batch of frames at once."""

    def __init__(self, out_dir: Path):
        folder = out_dir / SHARDS
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem.split("-")[1]) for p in folder.glob("part-*.jsonl") if p.stem.split("-")[1].isdigit()]
        self.path = folder / f"part-{max(numbers, default=0) + 1:04d}.jsonl"

    def add(self, frames: Sequence[FrameResult]) -> None:
        if frames:
            append_line(self.path, "\n".join(frame.line() for frame in frames), _parses)


def check_run(out_dir: Path, key: Mapping[str, object]) -> None:
    """Write ``run.json`` for a new run; refuse parts of another run (model, weights, frames...)."""
    path = out_dir / SHARDS / RUN_FILE
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(name for name in set(found) | set(key) if found.get(name) != key.get(name))
        if changed:
            raise MaskbenchError(f"{path.parent}: holds the results of another run (differs in: {', '.join(changed)}); "
                                 f"pass another --out, or delete {path.parent} to start over")
        return
    write_json_atomic(path, dict(key), indent=1)


def read_lines(out_dir: Path) -> Iterator[tuple[Path, int, dict]]:
    """(part, byte offset, line) of every whole line of every part, in the order written (a torn
    or unreadable line is skipped)."""
    for part in sorted((out_dir / SHARDS).glob("part-*.jsonl")):
        with part.open("rb") as file:
            offset = 0
            for text in file:
                try:
                    yield part, offset, json.loads(text)
                except ValueError:
                    pass
                offset += len(text)


def latest_lines(out_dir: Path) -> dict[int, tuple[ImageRecord, Path, int]]:
    """Each frame's (record, part, offset): its latest success, else its latest failure."""
    chosen: dict[int, tuple[ImageRecord, Path, int]] = {}
    for part, offset, line in read_lines(out_dir):
        record = ImageRecord(**line["record"])
        previous = chosen.get(record.image_id)
        if previous is None or record.error is None or previous[0].error is not None:
            chosen[record.image_id] = (record, part, offset)
    return chosen


def latest_records(out_dir: Path) -> dict[int, ImageRecord]:
    return {image_id: chosen[0] for image_id, chosen in latest_lines(out_dir).items()}


def merge(out_dir: Path, info: Mapping[str, object]) -> tuple[int, int]:
    """``results.json`` + ``images.json`` in predict's format (by image id, as predict writes
    them) from the parts; (frames, failed). Entries are read back one frame at a time."""
    chosen = latest_lines(out_dir)
    records = [chosen[image_id][0] for image_id in sorted(chosen)]
    files: dict[Path, IO[bytes]] = {}
    with contextlib.ExitStack() as stack, atomic_open(out_dir / RESULTS_FILE) as out:
        out.write("[")
        first = True
        for record in records:
            _, part, offset = chosen[record.image_id]
            if part not in files:
                files[part] = stack.enter_context(part.open("rb"))
            files[part].seek(offset)
            for entry in json.loads(files[part].readline())["entries"]:
                out.write(("" if first else ", ") + json.dumps(entry, allow_nan=False))
                first = False
        out.write("]")
    write_json_atomic(out_dir / IMAGES_FILE, images_dataset(records, info), indent=1)
    return len(records), sum(1 for record in records if record.error is not None)
