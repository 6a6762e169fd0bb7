"""What one benchmark measurement is, and the JSONL file that keeps them: the contract between
measuring (:mod:`maskbench.benchmark` writes records) and reporting (:mod:`maskbench.report` and
``recommend`` read them): the reporting side imports this module, never ``maskbench.benchmark``.

A :class:`BenchmarkJob` names everything that defines a measurement (model, weights, runtime,
precision, preprocessing, frames, threads, repetitions); its :meth:`~BenchmarkJob.key` is a
stable id, so rerunning the same command finds the jobs already measured and resumes.
A :class:`BenchmarkRecord` is the outcome: ``status`` ``"ok"`` with the measurements, or a
failure status with a one-line reason (the process crashed, ran out of memory, timed out...).

Records are appended to ``results.jsonl`` one whole line at a time as they are measured (one
write, fsynced), so killing the run or filling the disk loses nothing finished; a torn last line
is skipped on reading and cut off before the next append; the newest record of a key wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from ..utils.errors import MaskbenchError, one_line
from ..utils.files import append_line
from .stats import LatencyStats

T = TypeVar("T")

SCHEMA_VERSION = 1
RESULTS_FILE = "results.jsonl"

OK = "ok"
FAILED = "failed"  # the worker caught an error and reported it
CRASHED = "crashed"  # the worker process died (signal, hard crash)
OUT_OF_MEMORY = "out of memory"  # killed by the OOM killer, at its memory limit, or a MemoryError (benchmark/oom.py)
TIMEOUT = "timeout"
# How a job's timed calls were scheduled (BenchmarkRecord.timing): in a block of its own, or in
# rounds alternating with the other jobs of its group (benchmark/interleave.py).
TIMING_BLOCKS = "blocks"
TIMING_INTERLEAVED = "interleaved"
# The per-image timings every ok record has (fields of BenchmarkRecord).
LATENCY_PARTS = ("end_to_end", "decode", "preprocess", "inference", "postprocess")
# BenchmarkJob fields added after results files existed, with their default: left out of the
# key's hash at that default.
KEY_DEFAULTS = {"fidelity": False}


@dataclass(frozen=True)
class BenchmarkJob:
    model: str  # zoo name (resolved from an alias)
    runtime: str
    precision: str = "fp32"
    weights: str = "random"
    seed: int = 0
    mode: str = "stretch"  # a preprocess.ResizeMode value
    input_size: tuple[int, int] | None = None  # (w, h); None: the mode's default
    device: str | None = None
    threads: int | None = None
    warmup: int = 2  # untimed calls after the cold one
    repeat: int = 3  # timed passes over all frames
    images: tuple[str, ...] = ()
    cameras: tuple[str | None, ...] = ()  # nuScenes camera of each image, None elsewhere
    stages: bool = False  # also time the network's stages (torch runtimes only)
    coco: str | None = None  # COCO annotation file: also measure box/mask AP (after timing)
    coco_images: str | None = None  # the folder its file names are relative to
    coco_max_images: int | None = None
    fidelity: bool = False  # also compare with fp32 eager PyTorch (features, detections; AP drop with coco)

    def key(self) -> str:
        """Readable and stable: ``model/runtime/precision/mode/size#hash-of-everything``. Fields
        added later (:data:`KEY_DEFAULTS`) enter the hash only when set, so the jobs of older
        results files keep their keys (and resume)."""
        data = {k: v for k, v in self.to_dict().items() if not (k in KEY_DEFAULTS and v == KEY_DEFAULTS[k])}
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        size = "x".join(map(str, self.input_size)) if self.input_size else "default"
        return f"{self.model}/{self.runtime}/{self.precision}/{self.mode}/{size}#{digest}"

    def slug(self) -> str:
        """The key as a file name."""
        return self.key().replace("/", "_").replace("#", "_")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["images"] = list(self.images)
        data["cameras"] = list(self.cameras)
        data["input_size"] = list(self.input_size) if self.input_size else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkJob:
        data = dict(data)
        data["images"] = tuple(data.get("images", ()))
        data["cameras"] = tuple(data.get("cameras", ()))
        if data.get("input_size"):
            data["input_size"] = tuple(data["input_size"])
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class BenchmarkRecord:
    """One job's outcome. Latencies are per image, in milliseconds.

    ``end_to_end`` is the study's number: the API call from the decoded image to
    original-size masks (preprocess + inference + postprocess); ``decode`` (reading the file)
    is reported on its own. ``first_call_ms`` is the cold first call after ``prepare``
    (export/compile, timed as ``prepare_s``), excluded from the statistics like the warm-up.
    """

    key: str
    job: dict
    status: str
    error: str | None = None
    # the model, from the zoo (so reports never copy numbers by hand)
    model: str = ""
    alias: str = ""
    backbone: str = ""
    schedule: str = ""
    recipe: str = ""
    in_study: bool = False
    zoo_box_ap: float | None = None
    zoo_mask_ap: float | None = None
    params: int | None = None
    # how it ran
    weights: str = ""  # description, e.g. "random (seed 0, calibrated, untrained...)"
    weights_kind: str = ""  # random / official / checkpoint
    runtime: str = ""
    runtime_description: str = ""
    precision: str = ""
    device: str = ""
    threads: int | None = None
    mode: str = ""
    input_hw: list[int] | None = None  # the (padded) tensor the network saw, first frame
    images: int = 0
    # measurements
    setup_s: float | None = None  # model build + weights (+ calibration for random weights)
    prepare_s: float | None = None  # export / compile on first use
    first_call_ms: float | None = None
    end_to_end: dict | None = None  # LatencyStats.to_dict()
    decode: dict | None = None
    preprocess: dict | None = None
    inference: dict | None = None
    postprocess: dict | None = None
    stages: dict[str, dict] = field(default_factory=dict)  # network stage -> LatencyStats dict
    peak_rss_mb: float | None = None  # the whole process (includes export/compile)
    free_memory_mb: float | None = None  # out of memory: what was free (MemAvailable, cgroup headroom) at the end
    steady_rss_mb: float | None = None  # peak while timing (reset after prepare where Linux allows)
    gpu_memory_mb: float | None = None  # NVML: this process's GPU memory
    torch_cuda_peak_mb: float | None = None
    artifact_mb: float | None = None  # exported file / engine size on disk (torch: parameters)
    detections_per_image: float | None = None
    detections_file: str | None = None  # relative to the output folder
    measured_box_ap: float | None = None  # COCO AP in percent (like the zoo's), with --coco
    measured_mask_ap: float | None = None
    measured_on: str | None = None  # "<annotations> (<N> images)"
    # with --fidelity: against fp32 eager PyTorch on the same frames (verify/fidelity.py)
    feature_cosine: float | None = None  # FPN P2..P6: lowest cosine over levels and frames
    feature_rel_error: float | None = None  # highest ||runtime - eager|| / ||eager||
    fidelity_matched: float | None = None  # detections matched to eager's, mean per frame
    fidelity_reference_count: float | None = None  # eager's detections, mean per frame
    mean_mask_iou: float | None = None  # over every matched pair (0 when none matched)
    area_weighted_mask_iou: float | None = None  # sum of intersections / sum of unions
    fidelity_note: str | None = None  # the random-weights sentence, or the reason there is no measurement
    reference_mask_ap: float | None = None  # with --coco: fp32 eager's mask AP on the same data
    ap_drop: float | None = None  # reference_mask_ap - measured_mask_ap (points)
    # was the machine quiet while timing (machine_load.py decides "measured under load")
    load_average_before: float | None = None  # 1-minute load average right before the timed calls
    load_average_after: float | None = None  # ... and right after them
    other_worker_pids: list[int] | None = None  # other maskbench workers alive while timing; None: not checked
    others_busy_cores: float | None = None  # other processes' mean busy cores during the timed calls
    # how the timed calls were scheduled (benchmark/interleave.py; intervals.py reads them)
    timing: str | None = None  # TIMING_BLOCKS or TIMING_INTERLEAVED; None: written before it was recorded
    interleave_group: str | None = None  # the run's group id: records with the same one were compared directly
    compared_with: list[str] | None = None  # keys of the other jobs timed in the same rounds
    round_ms: list[float] | None = None  # end-to-end mean per timed pass (round), in order
    call_ms: list[float] | None = None  # every timed call's end-to-end, in order (the median's interval)
    # matrix throughput (benchmark/efficiency.py): the graph's FLOPs per image over the median inference
    gflop: float | None = None
    achieved_gflops: float | None = None
    peak_gflops: float | None = None  # the machine's matrix-multiply peak in this precision (benchmark/peak.py)
    peak_share: float | None = None  # achieved_gflops / peak_gflops
    environment: dict = field(default_factory=dict)
    started_at: str = ""
    wall_s: float | None = None
    schema: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == OK

    def latency(self, part: str = "end_to_end") -> LatencyStats | None:
        """A timed part (``LATENCY_PARTS``) or a network stage (its family's ``stage_names``); None if absent."""
        data = getattr(self, part) if part in LATENCY_PARTS else self.stages.get(part)
        return LatencyStats.from_dict(data) if data else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkRecord:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def append_record(path: Path, record: BenchmarkRecord) -> None:
    """One JSON line written whole or not at all, fsynced before returning (a kill right after
    loses nothing); a torn last line left by a crash or a full disk is cut off first
    (:func:`maskbench.utils.files.append_line`). A write error is :class:`~maskbench.utils.write_errors.WriteFailed`."""
    append_line(path, json.dumps(record.to_dict(), sort_keys=True), last_line_ok=is_json)


def read_records(path: Path) -> list[BenchmarkRecord]:
    """Every benchmark record in the file, in order (lines of other kinds, e.g. ``kind: "rig"``,
    are skipped: :mod:`.rig_records`). A torn last line (a kill or a full disk mid-write: no
    newline, or not JSON) is skipped, the job is simply measured again; any other unreadable
    line is an error naming the file and line."""
    return read_jsonl(path, lambda data: data.get("kind") is None, BenchmarkRecord.from_dict, "a benchmark record")


def read_jsonl(path: Path, accept: Callable[[dict], bool], build: Callable[[dict], T], what: str) -> list[T]:
    """``build(data)`` of each JSON line of ``path`` that ``accept`` takes, in order: the one
    reader of results files, whatever record types share them (a torn last line skipped)."""
    if not Path(path).exists():
        return []
    records = []
    lines = Path(path).read_bytes().split(b"\n")  # a complete file ends in a newline: the last item is b""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
            if not isinstance(data, dict) or accept(data):
                records.append(build(data))
        except (ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if not any(rest.strip() for rest in lines[number:]):
                continue  # torn last line: the job is simply measured again
            raise MaskbenchError(f"{path}:{number}: not {what} ({one_line(err)[:200]}); "
                                 "delete that line or the file") from None
    return records


def is_json(line: bytes) -> bool:
    """A complete JSON line (``append_line``'s check of the last line before appending)."""
    try:
        json.loads(line.decode("utf-8"))
    except ValueError:
        return False
    return True


def latest_records(records: list[BenchmarkRecord]) -> list[BenchmarkRecord]:
    """The newest record of each key, in first-seen order."""
    latest: dict[str, BenchmarkRecord] = {}
    for record in records:
        latest[record.key] = record
    return list(latest.values())
