"""The Ray Data pipeline: frames -> actors (:class:`.actor.FramePredictor`, one model each) ->
the driver, which writes each arriving block to the shards and at the end (or when stopped)
merges them into predict's ``results.json`` and ``images.json``.

Ray restarts a killed actor and retries its batch (Ray Data gives its actor pools
``max_restarts=-1`` and ``max_task_retries=-1``: ``ActorPoolMapOperator`` in Ray 2.60); a frame
whose results arrive twice (a retried batch) is written once: the driver keeps the first arrival.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ..data.frames import Frame
from ..pipeline.coco_results import ImageRecord, write_json_atomic
from ..pipeline.manifest import MANIFEST_FILE
from ..utils.errors import MaskbenchError, one_line
from .engine import quiet_data_context, ray_session, require_ray
from .frames import frames_digest, predict_frames
from .shards import SHARDS, FrameResult, ShardWriter, check_run, latest_records, merge
from .shipping import ModelChoice, build_choice_bundle, bundle_info, bundle_key, pack_bundle, require_graph_runtime

BUNDLE = "bundle"
INFO_FILE = "info.json"
SUMMARY_FILE = "summary.json"
MAX_BLOCKS = 100_000  # rows are paths: one block per batch up to here, so a retry redoes one batch


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` (None: ``RAY_ADDRESS``, else a local Ray for the run);
    ``actors`` (None: the cluster's CPUs // ``threads_per_actor``); ``threads_per_actor``: the
    runtime's threads (and the CPUs each actor reserves); ``batch_size``: frames per call."""

    address: str | None = None
    actors: int | None = None
    threads_per_actor: int = 1
    batch_size: int = 4
    progress: bool = True


@dataclass
class ActorStats:
    frames: int = 0
    busy_s: float = 0.0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "busy_s": round(self.busy_s, 3),
                "frames_per_s": round(self.frames / self.busy_s, 3) if self.busy_s else None}


@dataclass
class RaySummary:
    """``frames``: in the input; ``resumed``: done by earlier runs (in the shards); ``predicted``
    / ``errors``: this run's; ``setup_s``: bundle + Ray start; ``pipeline_s``: first frame
    submitted to last result; ``frames_per_s``: this run's frames over ``pipeline_s``."""

    out_dir: Path
    info: dict
    frames: int
    resumed: int = 0
    predicted: int = 0
    errors: list[str] = field(default_factory=list)
    actors: dict[str, ActorStats] = field(default_factory=dict)
    setup_s: float = 0.0
    pipeline_s: float = 0.0
    wall_s: float = 0.0
    first_started_at: float | None = None  # wall clock: the first frame's start on any actor
    last_ended_at: float | None = None  # and the last frame's end

    @property
    def steady_frames_per_s(self) -> float | None:
        """This run's frames over the span from the first frame's start to the last frame's end
        on the actors: the actors' start and the bundle's loading left out, Ray's scheduling,
        idle gaps and transfers between batches in (one clock per node: across nodes, as good
        as their clocks agree)."""
        done = self.predicted + len(self.errors)
        if self.first_started_at is None or self.last_ended_at is None or not done:
            return None
        span = self.last_ended_at - self.first_started_at
        return round(done / span, 3) if span > 0 else None

    @property
    def frames_per_s(self) -> float | None:
        done = self.predicted + len(self.errors)
        return round(done / self.pipeline_s, 3) if self.pipeline_s and done else None

    def to_dict(self) -> dict:
        return {"frames": self.frames, "resumed": self.resumed, "predicted": self.predicted,
                "failed": len(self.errors), "errors": self.errors, "wall_s": round(self.wall_s, 3),
                "setup_s": round(self.setup_s, 3), "pipeline_s": round(self.pipeline_s, 3),
                "frames_per_s": self.frames_per_s, "steady_frames_per_s": self.steady_frames_per_s,
                "actors": {k: v.to_dict() for k, v in self.actors.items()},
                "info": self.info}

    def lines(self) -> list[str]:
        per_actor = ", ".join(f"{name}: {s.frames} ({s.to_dict()['frames_per_s']}/s busy)"
                              for name, s in self.actors.items())
        return [f"{self.predicted} frame(s) predicted, {len(self.errors)} failed, {self.resumed} done before "
                f"(resumed), of {self.frames}; {self.wall_s:.1f} s wall ({self.setup_s:.1f} s setup), "
                f"{self.frames_per_s} frames/s ({self.steady_frames_per_s} once the actors ran)",
                f"per actor: {per_actor or 'none ran'}"]


def predict_on_ray(model: ModelChoice | Path, images: Path, out_dir: Path, cameras: Sequence[str] | None = None,
                   options: RayOptions = RayOptions()) -> RaySummary:
    """``maskbench predict --engine ray``: predict's files for ``images`` (file, folder, nuScenes
    folder with ``cameras``) in ``out_dir``, computed on Ray; resumes what ``out_dir`` holds.
    ``model``: what the driver builds, or the folder of a bundle to ship as it is."""
    if isinstance(model, ModelChoice):
        require_graph_runtime(model.runtime)
    require_ray()
    return run_frames(predict_frames(images, cameras), model, Path(out_dir), options)


def run_frames(frames: Sequence[Frame], model: ModelChoice | Path, out_dir: Path, options: RayOptions) -> RaySummary:
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    given = None if isinstance(model, ModelChoice) else Path(model)
    key = model.key() if isinstance(model, ModelChoice) else {"bundle": bundle_key(Path(model))}
    check_run(out_dir, {**key, "frames": frames_digest(frames), "count": len(frames)})
    folder = given or out_dir / BUNDLE
    info = bundle_info(folder) if given else _built(folder, cast(ModelChoice, model), frames, options.threads_per_actor)
    done = {image_id for image_id, record in latest_records(out_dir).items() if record.error is None}
    todo = [frame for frame in frames if frame.image_id not in done]
    summary = RaySummary(out_dir, info, len(frames), resumed=len(frames) - len(todo))
    try:
        with ray_session(options.address, (options.actors or 1) * options.threads_per_actor) as ray:
            actors = options.actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // options.threads_per_actor)
            threads = options.threads_per_actor
            info["engine"] = f"ray: {actors} actor(s) x {threads} thread(s), batch {options.batch_size}"
            summary.setup_s = time.perf_counter() - started
            if todo:
                _pipeline(ray, todo, folder, out_dir, actors, options, summary)
    finally:
        merge(out_dir, info)
        summary.wall_s = time.perf_counter() - started
        write_json_atomic(out_dir / SUMMARY_FILE, summary.to_dict(), indent=1)
    return summary


def _built(folder: Path, choice: ModelChoice, frames: Sequence[Frame], threads: int) -> dict:
    """The run's bundle in ``OUT/bundle`` (kept: it is what ran), built now or, on a resumed
    run of the same model (``check_run``), as the first run built it."""
    info_path = folder.parent / SHARDS / INFO_FILE
    if (folder / MANIFEST_FILE).is_file() and info_path.is_file():
        return json.loads(info_path.read_text(encoding="utf-8"))
    info = build_choice_bundle(folder, choice, [frame.path for frame in frames], threads)
    write_json_atomic(info_path, info, indent=1)
    return info


def _pipeline(ray, todo: Sequence[Frame], bundle_folder: Path, out_dir: Path, actors: int, options: RayOptions,
              summary: RaySummary) -> None:
    from tqdm import tqdm

    from .actor import FramePredictor

    quiet_data_context(ray)
    bundle = ray.put(pack_bundle(bundle_folder))
    blocks = min(MAX_BLOCKS, math.ceil(len(todo) / options.batch_size))
    dataset = ray.data.from_items([frame.row() for frame in todo], override_num_blocks=blocks).map_batches(
        FramePredictor, fn_constructor_kwargs={"bundle": [bundle], "threads": options.threads_per_actor},
        batch_size=options.batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=options.threads_per_actor, batch_format="numpy")
    writer, seen = ShardWriter(out_dir), set()
    pipeline_started = time.perf_counter()
    with tqdm(total=len(todo), unit="img", desc="predict on ray", disable=not options.progress) as bar:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                arrived = [_frame_result(batch, i) for i in range(len(batch["image_id"]))]
                new = [frame for frame in arrived if frame.record.image_id not in seen]
                writer.add(new)
                for frame in new:
                    seen.add(frame.record.image_id)
                    _count(summary, frame)
                    if frame.record.error is not None:
                        bar.write(f"skipped: {frame.record.error}", file=sys.stderr)
                bar.update(len(new))
        except ray.exceptions.RayError as err:
            last = one_line(str(err).strip().splitlines()[-1] if str(err).strip() else err)
            raise MaskbenchError(f"the Ray run stopped: {last}; the {len(seen)} frame(s) done are kept in "
                                 f"{out_dir / SHARDS} (run again to resume)") from err
        finally:
            summary.pipeline_s = time.perf_counter() - pipeline_started


def _frame_result(batch: dict, i: int) -> FrameResult:
    return FrameResult(ImageRecord(**json.loads(batch["record"][i])), str(batch["entries"][i]),
                       str(batch["actor"][i]), float(batch["seconds"][i]),
                       float(batch["ended_at"][i]))


def _count(summary: RaySummary, frame: FrameResult) -> None:
    stats = summary.actors.setdefault(frame.actor, ActorStats())
    stats.frames += 1
    stats.busy_s += frame.seconds
    started = frame.ended_at - frame.seconds
    summary.first_started_at = started if summary.first_started_at is None else min(summary.first_started_at, started)
    summary.last_ended_at = max(summary.last_ended_at or frame.ended_at, frame.ended_at)
    if frame.record.error is None:
        summary.predicted += 1
    else:
        summary.errors.append(frame.record.error)
