"""Measure one :class:`~.records.BenchmarkJob` in this process and write its record.

Run as ``python -m maskbench.benchmark.worker JOB.json RECORD.json OUT_DIR RUNNER_PID`` by the
runner, one process per job, so that a crash, an out-of-memory kill or a runtime that corrupts
the process loses that job only. The worker dies with its runner (:mod:`.lifeline`) and hands
its record to the runner in ``RECORD.json``: only the runner appends to ``results.jsonl``.

What is timed, per frame (the study's definition: the API call from a decoded image to
original-size masks):

``preprocess`` (resize, normalise, pad) -> ``inference`` (the runtime, synchronised on a GPU)
-> ``postprocess`` (rescale boxes, paste masks), ``end_to_end`` = their sum; ``decode``
(reading the file) on its own. Before timing: model setup, the runtime's ``prepare``
(export/compile, ``prepare_s``), one cold call (``first_call_ms``) and ``warmup`` calls. Around
the timed calls: the load average and any other maskbench worker alive
(:mod:`maskbench.results.machine_load`), so the report can mark a job measured under load.
With a reply fd (interleaved timing, :mod:`.interleave`), the worker says ``ready`` after the
warm-up and times each pass only when the runner commands it (:mod:`.control`); the record
keeps each pass's mean (``round_ms``) and every call (``call_ms``) for the intervals.
After timing, with ``fidelity``: the runtime against fp32 eager PyTorch on the same frames
(FPN features, detections; with ``coco`` also eager's AP, for ``ap_drop``), not timed.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from ..data.frames import Frame
from ..data.images import load_image
from ..models.detector import to_detections
from ..models.factory import RANDOM
from ..pipeline.coco_results import detections_to_coco, write_json_atomic
from ..pipeline.preprocess import ResizeMode
from ..predict.predictor import Predictor
from ..results.machine_load import QuietWatch
from ..results.records import (
    FAILED,
    OK,
    OUT_OF_MEMORY,
    TIMING_BLOCKS,
    TIMING_INTERLEAVED,
    BenchmarkJob,
    BenchmarkRecord,
)
from ..results.stats import LatencyStats
from ..utils.errors import ImageError, MaskbenchError
from ..utils.machine import describe_environment
from ..utils.timing import Stopwatch
from ..zoo import get_spec
from ..zoo.weights_kind import WeightsKind
from . import memory
from .control import Control, Turns
from .efficiency import fill_efficiency
from .job_model import job_model, job_runtime
from .lifeline import ORPHANED_EXIT_CODE, runner_alive, tie_to_runner

if TYPE_CHECKING:
    from ..runtimes.base import Runtime


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so a timer stopped afterwards measures it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def base_record(job: BenchmarkJob) -> BenchmarkRecord:
    """The record's description of the model and run, filled before anything can fail."""
    record = BenchmarkRecord(key=job.key(), job=job.to_dict(), status=FAILED, runtime=job.runtime,
                             precision=job.precision, mode=job.mode, threads=job.threads,
                             started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    try:
        spec = get_spec(job.model)
    except MaskbenchError:
        return record
    record.model, record.alias, record.backbone = spec.name, spec.alias, spec.backbone
    record.schedule, record.recipe, record.in_study = spec.weights.schedule, spec.weights.recipe, spec.in_study
    record.zoo_box_ap, record.zoo_mask_ap, record.params = spec.weights.box_ap, spec.weights.mask_ap, spec.num_params
    record.weights_kind = WeightsKind.parse(job.weights).value
    return record


def run_job(job: BenchmarkJob, out_dir: Path, control: Control | None = None) -> BenchmarkRecord:
    """Measure ``job``; failures become a ``failed`` record with a one-line reason. With
    ``control`` (interleaved timing) each timed pass waits for the runner's command."""
    started = time.perf_counter()
    record = base_record(job)
    try:
        _measure(job, out_dir, record, control)
        record.status = OK
    except MaskbenchError as err:
        record.error = str(err)
    except MemoryError:  # an allocation refused (RLIMIT_AS, overcommit off): out of memory, as the OOM killer's
        record.status, record.peak_rss_mb = OUT_OF_MEMORY, memory.peak_rss_mb()
        record.error = ("out of memory (an allocation failed): peak RSS "
                        f"{record.peak_rss_mb:,.0f} MiB; use fewer threads, a smaller --input-size, or a machine with "
                        "more memory")
    except Exception as err:  # noqa: BLE001 - any runtime failure is this job's result, not the run's end
        record.error = f"{type(err).__name__}: {' '.join(str(err).split())[:500]}"
    record.wall_s = time.perf_counter() - started
    return record


def _measure(job: BenchmarkJob, out_dir: Path, record: BenchmarkRecord, control: Control | None) -> None:
    """The job's steps in order, each filling its part of ``record``: what a failure leaves
    unmeasured stays empty."""
    from ..runtimes.registry import require_runtime

    if job.threads:
        torch.set_num_threads(job.threads)
    require_runtime(job.runtime, job.precision, job.device)  # refused before any model work
    _say("reading frames")
    frames, decode_s = _decode_frames(job)
    predictor = _build(job, frames, record)
    _prepare_runtime(predictor, frames, record)
    _warm_up(job, predictor, frames, record)
    last = _time_passes(job, predictor, frames, record, control)
    record.decode = LatencyStats.from_seconds(decode_s).to_dict()
    # Steady memory is read here: the stage profiler and the fidelity tap compile second copies
    # of the graph, and AP measurement holds a dataset; none of that is the timed runtime's.
    steady_rss_mb = memory.peak_rss_mb()  # the whole-process peak where the reset is not allowed
    _measure_untimed(job, predictor, frames, record)
    _record_memory_and_output(job, out_dir, predictor, frames, last, record, steady_rss_mb)


def _build(job: BenchmarkJob, frames: list[Frame], record: BenchmarkRecord) -> Predictor:
    """The model (``setup_s``: built, weights loaded or calibrated) and the job's runtime for it."""
    _say("building the model" + (" (calibrating random weights)" if job.weights == RANDOM else ""))
    t0 = time.perf_counter()
    images = [frame.image for frame in frames]
    loaded = job_model(job, images)
    record.setup_s = time.perf_counter() - t0
    record.weights = loaded.weights

    runtime = job_runtime(job, loaded, images)
    record.runtime_description = runtime.describe()
    record.device = runtime.device
    record.threads = runtime.threads or torch.get_num_threads()
    return Predictor(loaded, ResizeMode(job.mode), job.input_size, runtime)


def _runtime(predictor: Predictor) -> Runtime:
    return cast("Runtime", predictor.runtime)  # the benchmark always gives one


def _prepare_runtime(predictor: Predictor, frames: list[Frame], record: BenchmarkRecord) -> None:
    """The runtime's export/compile (``prepare_s``), once per input shape."""
    _say("preparing the runtime (export/compile)")
    runtime = _runtime(predictor)
    t0 = time.perf_counter()
    prepared = set()
    for frame in frames:  # keep-ratio frames of other shapes need graphs of their own
        tensor, meta = predictor.prepare(frame.image)
        if tuple(tensor.shape) not in prepared:
            prepared.add(tuple(tensor.shape))
            runtime.prepare(tensor, meta.img_shape)
            record.input_hw = record.input_hw or list(tensor.shape[-2:])
    record.prepare_s = time.perf_counter() - t0


def _warm_up(job: BenchmarkJob, predictor: Predictor, frames: list[Frame], record: BenchmarkRecord) -> None:
    """The cold call (``first_call_ms``), the peak memory so far, then the warm-up calls."""
    runtime = _runtime(predictor)
    record.first_call_ms = timed_call(predictor, frames[0].image, runtime.device)[0] * 1000.0
    record.peak_rss_mb = memory.peak_rss_mb()  # setup + export/compile + the cold call
    _drop_eager_weights(job, runtime, predictor.loaded)
    memory.reset_peak_rss()
    for index in range(job.warmup):
        timed_call(predictor, frames[index % len(frames)].image, runtime.device)


def _time_passes(job: BenchmarkJob, predictor: Predictor, frames: list[Frame], record: BenchmarkRecord,
                 control: Control | None) -> dict[int, list[dict]]:
    """The timed passes over the frames (alone, or each call on the runner's turn), the load on
    the machine around them; returns the last pass's detections as COCO results (RLE masks)."""
    runtime = _runtime(predictor)
    parts: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": [], "end_to_end": []}
    last: dict[int, list[dict]] = {}
    rounds = max(1, job.repeat)
    record.timing = TIMING_BLOCKS if control is None else TIMING_INTERLEAVED
    record.round_ms = []
    watch: QuietWatch | None = None  # was the machine quiet? (looked at between passes, never inside a call)
    turns = Turns(control, len(frames))  # one timed call per turn: a round is a pass over the frames
    for round_ in range(rounds):
        first_call = len(parts["end_to_end"])
        for index in turns.calls(len(frames)):
            watch = watch or QuietWatch.start()
            _say(f"timing {round_ * len(frames) + index + 1}/{rounds * len(frames)}")
            with watch.during_call():
                total, pre, infer, post, dets = timed_call(predictor, frames[index].image, runtime.device)
            for name, value in zip(("end_to_end", "preprocess", "inference", "postprocess"), (total, pre, infer, post)):
                parts[name].append(value)
            # A frame's detections are dropped before the next call, as a deployed loop drops them.
            if round_ == rounds - 1:
                last[index] = detections_to_coco(dets, index + 1)
            del dets
        record.round_ms.append(1000.0 * float(np.mean(parts["end_to_end"][first_call:])))
        assert watch is not None  # frames >= 1
        watch.look()  # after the pass's last call, before its 'timed': never inside anyone's call
        turns.end_pass()
    turns.finish()
    assert watch is not None  # rounds and frames >= 1
    watch.stop()
    record.load_average_before, record.load_average_after = watch.load_before, watch.load_after
    record.others_busy_cores = watch.others_busy_cores()
    seen = watch.other_worker_pids()
    record.other_worker_pids = None if seen is None else [pid for pid in seen if pid not in turns.peers]
    for name, values in parts.items():
        setattr(record, name, LatencyStats.from_seconds(values).to_dict())
    record.call_ms = [1000.0 * value for value in parts["end_to_end"]]
    return last


def _measure_untimed(job: BenchmarkJob, predictor: Predictor, frames: list[Frame], record: BenchmarkRecord) -> None:
    """What the job asked for beside the timing: the stages, fidelity, AP and its drop."""
    runtime = _runtime(predictor)
    if job.stages:
        _say("timing the stages")
        record.stages = _stage_timings(predictor, frames, job.repeat, runtime)
    if job.fidelity:
        _measure_fidelity(job, runtime, predictor.loaded, frames, record)
    if job.coco:
        _measure_ap(job, predictor, record)
        if job.fidelity:
            _measure_ap_drop(job, predictor, record)


def _record_memory_and_output(job: BenchmarkJob, out_dir: Path, predictor: Predictor, frames: list[Frame],
                              last: dict[int, list[dict]], record: BenchmarkRecord, steady_rss_mb: float) -> None:
    """Memory, the artifact's size, the detections file and the machine."""
    runtime = _runtime(predictor)
    assert record.peak_rss_mb is not None  # read by _warm_up
    record.steady_rss_mb = steady_rss_mb
    record.peak_rss_mb = max(record.peak_rss_mb, steady_rss_mb)
    record.gpu_memory_mb = memory.gpu_process_memory_mb(torch.device(runtime.device).index or 0) \
        if runtime.device.startswith("cuda") else None
    record.torch_cuda_peak_mb = memory.torch_cuda_peak_mb(runtime.device)
    record.artifact_mb = _artifact_mb(runtime, predictor.loaded.model)
    record.images = len(frames)
    record.detections_per_image = sum(len(results) for results in last.values()) / len(last)
    record.detections_file = _save_detections(out_dir, job, frames, last)
    record.environment = describe_environment(runtime.device)
    fill_efficiency(record, runtime, predictor.loaded,  # FLOPs and share of peak, after timing
                    lambda: _network_inputs(predictor, frames))


def _network_inputs(predictor: Predictor, frames: list[Frame]) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    """The frames as the network takes them: each prepared tensor and its image shape."""
    return [(tensor, meta.img_shape) for tensor, meta in map(predictor.prepare, (f.image for f in frames))]


def _drop_eager_weights(job: BenchmarkJob, runtime, loaded) -> None:
    """A graph runtime has compiled its own copy of the weights: the eager fp32 model is not
    part of what is deployed, so free it (and return the freed memory to the system) before
    the steady memory is measured. Kept when ``--fidelity`` compares against it, and when
    ``--coco`` in keep-ratio mode will meet image sizes that need graphs of their own."""
    needed_later = job.fidelity or (job.coco and ResizeMode(job.mode) is not ResizeMode.STRETCH)
    if needed_later or runtime.needs_eager_model():
        return
    loaded.model.to("meta")
    gc.collect()
    memory.release_free_memory()


def _measure_ap(job: BenchmarkJob, predictor: Predictor, record: BenchmarkRecord) -> None:
    """Box and mask AP of this very model x runtime x precision on the user's COCO data."""
    from ..evaluation.run import evaluate_predictor

    coco, coco_images = cast(str, job.coco), cast(str, job.coco_images)  # set: measuring AP was asked for
    _say("measuring AP on " + Path(coco).name)
    result = evaluate_predictor(predictor, Path(coco), Path(coco_images), max_images=job.coco_max_images,
                                progress=False)
    metrics = result.metrics
    record.measured_box_ap = 100.0 * metrics.box.ap if metrics.box else None
    record.measured_mask_ap = 100.0 * metrics.mask.ap if metrics.mask else None
    record.measured_on = f"{job.coco} ({result.images_scored} images scored, {len(result.failures)} failed)"


def _measure_fidelity(job: BenchmarkJob, runtime, loaded, frames: list[Frame], record: BenchmarkRecord) -> None:
    """The runtime in its precision against fp32 eager PyTorch on the benchmark's frames (see
    :mod:`maskbench.verify.fidelity`). A runtime without a feature tap (TensorRT) keeps its
    timings; ``fidelity_note`` says why there is no measurement."""
    from ..runtimes.base import FeatureTapUnavailable
    from ..verify.fidelity import measure_fidelity

    _say("comparing with fp32 eager PyTorch (fidelity)")
    try:
        fidelity = measure_fidelity(runtime, loaded, [frame.image for frame in frames], ResizeMode(job.mode),
                                    job.input_size)
    except FeatureTapUnavailable as err:
        record.fidelity_note = f"no fidelity measurement: {err}"
        return
    record.feature_cosine, record.feature_rel_error = fidelity.min_cosine, fidelity.max_rel_error
    record.fidelity_matched, record.fidelity_reference_count = fidelity.matched, fidelity.reference_count
    record.mean_mask_iou, record.area_weighted_mask_iou = fidelity.mean_mask_iou, fidelity.area_weighted_mask_iou
    record.fidelity_note = fidelity.note or None


def _measure_ap_drop(job: BenchmarkJob, predictor: Predictor, record: BenchmarkRecord) -> None:
    """fp32 eager PyTorch's mask AP on the same COCO data, and how much this record loses to it.
    A torch fp32 record on the eager model's own device is that reference: measured once."""
    from ..evaluation.run import evaluate_predictor

    if record.measured_mask_ap is None:
        return
    loaded = predictor.loaded
    model_device = str(next(loaded.model.parameters()).device)
    reference: float | None
    if job.runtime == "torch" and job.precision == "fp32" and str(record.device) == model_device:
        reference = record.measured_mask_ap
    else:
        _say("measuring fp32 eager PyTorch's AP (the reference of the AP drop)")
        eager = Predictor(loaded, predictor.mode, predictor.input_size)  # runtime None: loaded.model itself
        coco, coco_images = cast(str, job.coco), cast(str, job.coco_images)  # set: measuring AP was asked for
        result = evaluate_predictor(eager, Path(coco), Path(coco_images), max_images=job.coco_max_images,
                                    progress=False)
        reference = 100.0 * result.metrics.mask.ap if result.metrics.mask else None
    if reference is not None:
        record.reference_mask_ap = reference
        record.ap_drop = reference - record.measured_mask_ap


def _say(message: str) -> None:
    """A progress line: the runner shows the latest one beside its progress bar."""
    print(message, flush=True)


def _decode_frames(job: BenchmarkJob) -> tuple[list[Frame], list[float]]:
    """Read every frame once (timed: ``decode``); unreadable files are reported and skipped."""
    frames, decode_s = [], []
    cameras = list(job.cameras) + [None] * (len(job.images) - len(job.cameras))
    for path, camera in zip(job.images, cameras):
        t0 = time.perf_counter()
        try:
            image = load_image(path)
        except ImageError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        decode_s.append(time.perf_counter() - t0)
        frames.append(Frame(path, camera, decoded=image))
    if not frames:
        raise MaskbenchError(f"none of the {len(job.images)} benchmark image(s) could be read; check --images")
    return frames, decode_s


def timed_call(predictor: Predictor, image, device: str):
    """One end-to-end call split into its three parts (seconds), and its detections."""

    clock = Stopwatch()
    tensor, meta = predictor.prepare(image)
    prepare_s = clock.lap()
    raw = cast("Runtime", predictor.runtime)(tensor, meta.img_shape)  # the benchmark always gives one
    synchronize(device)
    infer_s = clock.lap()
    loaded = predictor.loaded
    dets = to_detections(raw, meta, loaded.spec.family, loaded.model.detection_config.mask_thr_binary)
    post_s = clock.lap()
    return clock.elapsed(), prepare_s, infer_s, post_s, dets


@torch.inference_mode()
def _stage_timings(predictor: Predictor, frames: list[Frame], repeat: int, runtime) -> dict[str, dict]:
    """The network's stages one by one (runtimes that run the eager model:
    ``runtime.stage_model()``). Graph runtimes (OpenVINO, ONNX Runtime) run the network as one
    call: their stages come from the runtime's per-node profiler on a profiling copy of the graph
    (:func:`~maskbench.benchmark.profiling.graph_profile.graph_stage_timings`; plus ``other``, time
    no stage could claim, and ``profiled_call``, the wall time of those calls); TensorRT: none."""
    model = runtime.stage_model()
    if model is None:
        from .profiling.graph_profile import graph_stage_timings

        prepared = [predictor.prepare(frame.image) for frame in frames]
        graph_timings = graph_stage_timings(runtime, [tensor for tensor, _ in prepared],
                                            [meta.img_shape for _, meta in prepared], repeat)
        return {name: LatencyStats.from_seconds(values).to_dict() for name, values in graph_timings.items()}
    device = runtime.device
    dtype = next(model.parameters()).dtype
    timings: dict[str, list[float]] = {name: [] for name in model.STAGE_NAMES}
    for _ in range(max(1, repeat)):
        for frame in frames:
            tensor, meta = predictor.prepare(frame.image)
            marks = [time.perf_counter()]

            def lap(marks: list[float] = marks) -> None:
                synchronize(device)
                marks.append(time.perf_counter())

            model.staged_forward(tensor.to(device, dtype), [meta.img_shape], lap)
            for name, start, end in zip(model.STAGE_NAMES, marks, marks[1:]):
                timings[name].append(end - start)
    return {name: LatencyStats.from_seconds(values).to_dict() for name, values in timings.items()}


def _artifact_mb(runtime, model) -> float | None:
    """Size on disk of what the runtime loads (ONNX file, engine); eager: the fp32 parameters."""
    paths = runtime.artifact_files()
    if paths:
        return memory.file_size_mb(paths)
    return sum(p.numel() * p.element_size() for p in model.parameters()) / (1024.0 * 1024.0)


def _save_detections(out_dir: Path, job: BenchmarkJob, frames: list[Frame], last) -> str:
    """The last timed pass's detections (COCO results with RLE masks), for the overlays."""
    relative = Path("detections") / f"{job.slug()}.json"
    payload: dict[str, list[Any]] = {"frames": []}
    for index, frame in enumerate(frames):
        payload["frames"].append({"path": frame.path, "camera": frame.camera, "width": int(frame.image.shape[1]),
                                  "height": int(frame.image.shape[0]),
                                  "results": last[index]})
    write_json_atomic(out_dir / relative, payload)
    return str(relative)


def main(argv: list[str] | None = None) -> int:
    """``JOB.json RECORD.json OUT_DIR [RUNNER_PID [REPLY_FD]]``. Tied to the runner before
    anything else (only imports ran before: nothing measured, nothing written), and the record is
    written only while the runner is still there to read it. ``REPLY_FD``: interleaved timing,
    commanded by the runner (:mod:`.control`)."""
    args = argv if argv is not None else sys.argv[1:]
    runner_pid = int(args[3]) if len(args) > 3 else None
    tie_to_runner(runner_pid)
    job_path, record_path, out_dir = args[:3]
    control = Control(int(args[4])) if len(args) > 4 else None
    job = BenchmarkJob.from_dict(json.loads(Path(job_path).read_text(encoding="utf-8")))
    record = run_job(job, Path(out_dir), control)
    record.peak_rss_mb = memory.peak_rss_mb() if record.peak_rss_mb is None else record.peak_rss_mb
    if not runner_alive(runner_pid):
        return ORPHANED_EXIT_CODE
    write_json_atomic(record_path, record.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
