"""MMDetection 3.3 eager vs maskbench's CPU runtimes, same frame, same weights, one run.

For each model (default: the study's five): random weights calibrated on the frame (exactly 100
detections) are saved as an MMDetection checkpoint; MMDetection builds the model from its
official config, loads them and times ``inference_detector`` (tools/oracle/time_mmdet.py, in the
oracle environment of tools/oracle/setup.sh); maskbench times each candidate runtime x precision
as deployed: a fresh process that loads the checkpoint, takes the already exported (and, for
int8, quantized) graph from the cache, frees the eager weights (and returns freed memory to the
system: ``malloc_trim``), and times the end-to-end call
(preprocess -> network -> masks pasted at the original size). The best fp32 and the best
reduced-precision candidate of each model are compared with MMDetection; fidelity against fp32
torch eager (FPN features, detections, masks) is measured on the same frame.

    .venv/bin/python tools/mmdet_vs_maskbench.py [--models r101 ...] [--oracle ../oracle-venv]
        [--keep-ratio] [--out docs/cpu-speed.md]

``--keep-ratio``: both sides use the model's keep-ratio pipeline (Mask R-CNN: 1333x800 + pad to
/32; RTMDet-Ins: its own 640x640 + pad with 114, as its config defines) instead of the static
stretch (Mask R-CNN 1344x800, RTMDet-Ins 640x640).

Every process gets ``--threads`` threads (default 2); run it on an otherwise idle machine.

Interleaved (the default; ``--no-interleave``: one process after another, as before): per model,
MMDetection's process and every candidate's are started and prepared one after another (model
loaded, graph compiled, warm-up done), then the timed calls alternate between them, MMDetection,
candidate 1, candidate 2, ..., round after round, exactly one process timing at any moment
(``maskbench.benchmark.control``: the benchmark's own protocol), so the machine's drift falls on
MMDetection and maskbench alike and the speed-ups are ratios of the same minutes.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

STUDY = ("r101", "x101", "s101", "swin-t", "convnext-t")


@dataclass(frozen=True)
class Reference:
    """A family's reference implementation: its name, its environment (``--oracle`` /
    ``--rfdetr-env``) and the script that times it there."""

    name: str
    env_arg: str
    script: str


MMDET = Reference("MMDetection 3.3 eager", "oracle", "tools/oracle/time_mmdet.py")
RFDETR = Reference("rfdetr 1.11.2 eager", "rfdetr_env", "tools/rfdetr_oracle/time_rfdetr.py")
REFERENCES = {"mask-rcnn": MMDET, "rtmdet-ins": MMDET, "rfdetr-seg": RFDETR}
CANDIDATES = (("openvino", "fp32"), ("onnxruntime", "fp32"), ("openvino", "bf16"), ("openvino", "int8"),
              ("onnxruntime", "int8"))
DEFAULT_IMAGE = "CAM_FRONT"
SEED = 0


def frame_path(camera: str) -> Path:
    from maskbench.data.sources import embedded_nuscenes, find_images

    return Path(find_images(embedded_nuscenes(), cameras=[camera])[0].path)


# ----------------------------------------------------------------------------- maskbench side
def load_fixed(alias: str, checkpoint: Path):
    """The saved calibrated weights, keeping exactly 100 detections as random weights do."""
    from maskbench.models.factory import create_model

    return create_model(alias, str(checkpoint), fixed_count=True, progress=False)


def prepare(alias: str, image: Path, workdir: Path, candidates, threads: int, keep_ratio: bool = False) -> dict:
    """Calibrate and save the weights; export/quantize every candidate into the cache; measure
    fidelity of each candidate against fp32 torch eager on the frame."""
    import torch

    from maskbench.data.images import load_image
    from maskbench.models.factory import create_model
    from maskbench.runtimes.registry import get_runtime
    from maskbench.zoo import get_spec

    torch.set_num_threads(threads)
    frame = load_image(image)
    spec = get_spec(alias)
    from maskbench.models.inputs import preprocess
    from maskbench.pipeline.preprocess import ResizeMode

    mode = ResizeMode.KEEP_RATIO if keep_ratio else ResizeMode.STRETCH
    tensor, meta = preprocess(frame, mode, None, spec.input_format)  # calibrated on what is timed
    images, shapes = tensor, [meta.img_shape]
    loaded = create_model(alias, "random", seed=SEED, calibration_images=images, calibration_shapes=shapes,
                          progress=False)
    checkpoint = workdir / f"{alias}.pth"
    from maskbench.data.coco_classes import COCO_CLASSES

    torch.save({"meta": {"CLASSES": COCO_CLASSES}, "state_dict": loaded.model.state_dict()}, checkpoint)
    loaded = load_fixed(alias, checkpoint)  # what the timed processes load: same weights, same hash
    fidelity = {}
    for runtime_name, precision in candidates:
        runtime = get_runtime(runtime_name, loaded, mode=mode, threads=threads, precision=precision,
                              calibration_images=[frame])
        runtime.prepare(images[:1], shapes[0])
        fidelity[f"{runtime_name}/{precision}"] = _fidelity(runtime, loaded, frame, mode)
    return {"checkpoint": str(checkpoint), "fidelity": fidelity}


def _fidelity(runtime, loaded, frame, mode) -> dict | None:
    try:
        from maskbench.verify.fidelity import measure_fidelity
    except ImportError:
        return None
    result = measure_fidelity(runtime, loaded, [frame], mode)
    return result.as_dict() if hasattr(result, "as_dict") else dict(vars(result))


def time_deployed(alias: str, runtime_name: str, precision: str, checkpoint: Path, image: Path, threads: int,
                  warmup: int, repeat: int, keep_ratio: bool = False, control=None) -> dict:
    """One candidate as deployed: cached graph, eager weights freed, end-to-end calls timed
    (with ``control``, a :class:`maskbench.benchmark.control.Control`: each call on the runner's turn)."""
    import gc

    import torch

    from maskbench.benchmark import memory
    from maskbench.benchmark.control import turns
    from maskbench.benchmark.worker import timed_call
    from maskbench.data.images import load_image
    from maskbench.pipeline.preprocess import ResizeMode
    from maskbench.predict.predictor import Predictor
    from maskbench.runtimes.registry import get_runtime

    torch.set_num_threads(threads)
    frame = load_image(image)
    loaded = load_fixed(alias, checkpoint)
    mode = ResizeMode.KEEP_RATIO if keep_ratio else ResizeMode.STRETCH
    runtime = get_runtime(runtime_name, loaded, mode=mode, threads=threads, precision=precision,
                          calibration_images=[frame])
    predictor = Predictor(loaded, mode, None, runtime)
    tensor, meta = predictor.prepare(frame)
    t0 = time.perf_counter()
    runtime.prepare(tensor, meta.img_shape)
    prepare_s = time.perf_counter() - t0
    if runtime_name not in ("torch", "torch-compile"):
        loaded.model.to("meta")  # the graph runtime holds its own weights; the eager copy is not deployed
        gc.collect()
    memory.release_free_memory()  # what the allocator kept from loading and compiling
    for _ in range(max(1, warmup)):
        timed_call(predictor, frame, runtime.device)
    whole_peak = memory.peak_rss_mb()
    memory.reset_peak_rss()
    parts = {"end_to_end": [], "preprocess": [], "inference": [], "postprocess": []}
    for _ in turns(control, repeat):
        *seconds, dets = timed_call(predictor, frame, runtime.device)  # the benchmark worker's split
        for name, value in zip(parts, seconds):
            parts[name].append(value)
    detections = len(dets)
    return {"alias": alias, "runtime": runtime_name, "precision": precision, "seconds": parts["end_to_end"],
            "parts": parts, "prepare_s": prepare_s, "detections": detections, "mask_shape": list(dets.masks.shape),
            "describe": runtime.describe(), "threads": threads,
            "peak_rss_mb": max(whole_peak, memory.peak_rss_mb()), "steady_rss_mb": memory.peak_rss_mb()}


# ----------------------------------------------------------------------------- orchestration
def _run(command: list[str], label: str, timeout: int) -> bool:
    print(f"[{time.strftime('%H:%M:%S')}] {label}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    try:
        done = subprocess.run(command, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"  timed out after {timeout} s", flush=True)
        return False
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print(f"  failed (exit {done.returncode}): {' | '.join(tail)}", flush=True)
        return False
    return True


def _run_interleaved(timers: list[tuple[str, Path, list[str]]], repeat: int, workdir: Path, timeout: int) -> None:
    """The timers prepared one after another, then one timed call each per round, one at a time
    (the benchmark's protocol, :mod:`maskbench.benchmark.control`); each writes its JSON on
    ``finish``. A timer that fails or runs past ``timeout`` seconds of its own is dropped, said
    in one line with the last line of its log; the others go on."""
    from maskbench.benchmark.control import (
        READY,
        TIMED,
        ControlledProcess,
        ProcessGone,
        ProcessTimedOut,
        finish_command,
        time_command,
    )
    from maskbench.benchmark.worker_process import kill_group, last_line

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    live: list[tuple[str, ControlledProcess, Path]] = []

    def step(label: str, channel: ControlledProcess, log: Path, command: bytes | None, reply: str | None) -> bool:
        try:
            if command is not None:
                channel.send(command)
            if reply is not None:
                channel.await_reply(reply)
            elif channel.await_exit() != 0:
                raise ProcessGone()
            return True
        except (ProcessGone, ProcessTimedOut) as stop:
            kill_group(channel.process)
            why = "timed out" if isinstance(stop, ProcessTimedOut) else f"ended (exit {channel.process.poll()})"
            print(f"  {label}: {why}; last output: {last_line(log)} (log: {log})", flush=True)
            return False

    try:
        for label, _, command in timers:  # prepared one after another: a compile never runs beside another
            print(f"[{time.strftime('%H:%M:%S')}] {label}: prepare", flush=True)
            log = workdir / (label.replace(": ", ".").replace(" ", "_") + ".log")
            try:
                channel = ControlledProcess.start(lambda fd, command=command: [*command, "--reply-fd", str(fd)], log,
                                                  timeout, env)
            except OSError as err:  # e.g. no oracle environment: tools/oracle/setup.sh makes it
                print(f"  {label}: cannot start {command[0]}: {err.strerror}", flush=True)
                continue
            if step(label, channel, log, None, READY):
                live.append((label, channel, log))
            else:
                channel.close()
        print(f"[{time.strftime('%H:%M:%S')}] {len(live)} timer(s) take turns, {repeat} round(s)", flush=True)
        for _ in range(max(1, repeat)):
            for entry in list(live):
                label, channel, log = entry
                if not step(label, channel, log, time_command([]), TIMED):
                    live.remove(entry)
                    channel.close()
        for label, channel, log in live:
            step(label, channel, log, finish_command(), None)
    finally:
        for _, channel, _ in live:
            kill_group(channel.process)
            channel.close()


def _control(reply_fd: int | None):
    from maskbench.benchmark.control import control_from

    return control_from(reply_fd)


def _mean(values) -> float:
    return sum(values) / len(values)


def orchestrate(args) -> int:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    image = frame_path(args.camera)
    python = sys.executable
    candidates = [tuple(c.split("/")) for c in args.candidates]
    mode_flag = ["--keep-ratio"] if args.keep_ratio else []
    rows_path = workdir / "rows.json"
    rows = json.loads(rows_path.read_text()) if rows_path.exists() and not args.fresh else {}
    started = time.perf_counter()
    for alias in args.models:
        row = rows.setdefault(alias, {"maskbench": {}})
        prep_out = workdir / f"{alias}.prepare.json"
        if not prep_out.exists() or args.fresh:
            if not _run([python, __file__, "--prepare", alias, "--image", str(image), "--workdir", str(workdir),
                         "--threads", str(args.threads), "--candidates", *args.candidates, "--json", str(prep_out),
                         *mode_flag],
                        f"{alias}: calibrate, export, quantize, fidelity", 3600):
                continue
        row["prepare"] = json.loads(prep_out.read_text())
        checkpoint = row["prepare"]["checkpoint"]
        common = ["--image", str(image), "--threads", str(args.threads), "--warmup", str(args.warmup),
                  "--repeat", str(args.repeat), *mode_flag]
        reference = REFERENCES[_family(alias)]
        mmdet_out = workdir / f"{alias}.reference.json"
        reference_python = str(Path(getattr(args, reference.env_arg)) / "bin" / "python")
        timers = [(f"{alias}: {reference.name}", mmdet_out,
                   [reference_python, str(REPO / reference.script), "--model", alias,
                    "--checkpoint", checkpoint, "--out", str(mmdet_out), *common])]
        for runtime_name, precision in candidates:
            out = workdir / f"{alias}.{runtime_name}.{precision}.json"
            timers.append((f"{alias}: maskbench {runtime_name} {precision}", out,
                           [python, __file__, "--time-one", alias, runtime_name, precision, "--checkpoint", checkpoint,
                            "--json", str(out), *common]))
        for out in (out for _, out, _ in timers):
            out.unlink(missing_ok=True)
        if args.interleave:
            _run_interleaved(timers, args.repeat, workdir, 1800)
        else:
            for label, _, command in timers:
                _run(command, label, 1800)
        if mmdet_out.exists():
            row["mmdet"] = json.loads(mmdet_out.read_text())  # the reference's (the key of earlier runs)
        for runtime_name, precision in candidates:
            out = workdir / f"{alias}.{runtime_name}.{precision}.json"
            if out.exists():
                row["maskbench"][f"{runtime_name}/{precision}"] = json.loads(out.read_text())
        rows_path.write_text(json.dumps(rows, indent=1))
    info = _environment(args, image, time.perf_counter() - started)
    Path(args.out).write_text(render(rows, info, args))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    print(f"wrote {args.out}", flush=True)
    return 0


def _environment(args, image: Path, wall_s: float) -> dict:
    import onnxruntime
    import openvino
    import torch

    from maskbench.utils.machine import describe_environment

    env = describe_environment("cpu")
    return {"date": _dt.date.today().isoformat(), "cpu": env.get("cpu"), "cpu_flags": env.get("cpu_flags"),
            "cores": os.cpu_count(), "threads": args.threads, "python": platform.python_version(),
            "torch": torch.__version__, "openvino": openvino.__version__, "onnxruntime": onnxruntime.__version__,
            "image": str(image.relative_to(REPO)) if image.is_relative_to(REPO) else str(image),
            "warmup": args.warmup, "repeat": args.repeat, "wall_min": round(wall_s / 60.0, 1), "argv": args.argv,
            "keep_ratio": bool(args.keep_ratio), "interleave": bool(args.interleave)}


def best(row: dict, reduced: bool) -> tuple[str, dict] | None:
    # a candidate that gave detections; the tables show how many beside the reference's (RF-DETR-Seg
    # drops those in a COCO slot without a class, rfdetr keeps them: less mask work for maskbench)
    found = [(key, r) for key, r in row.get("maskbench", {}).items()
             if (r["precision"] != "fp32") == reduced and (r.get("detections") or 0) > 0]
    return min(found, key=lambda item: _mean(item[1]["seconds"])) if found else None


def _fidelity_cell(row: dict, key: str) -> str:
    fidelity = (row.get("prepare", {}).get("fidelity") or {}).get(key)
    if not fidelity:
        return "not measured"
    cosine = fidelity.get("min_cosine")
    rel = fidelity.get("max_rel_error")
    matched = fidelity.get("matched")
    iou = fidelity.get("mean_mask_iou")
    bits = []
    if cosine is not None:
        bits.append(f"feature cosine {cosine:.4f}, rel. error {rel:.1e}")
    if matched is not None:
        reference = fidelity.get("reference_count") or 100
        bits.append(f"{matched:.0f}/{reference:.0f} matched" + (f", mask IoU {iou:.3f}" if iou is not None else ""))
    return "; ".join(bits) or "not measured"


# Speed-up targets per family (best fp32, best reduced precision): issue 9's for Mask R-CNN,
# issue 15's for RTMDet-Ins (which also asks post-processing <= 10 % of end-to-end).
TARGETS = {"mask-rcnn": (2.0, 4.0), "rtmdet-ins": (4.0, 8.0), "rfdetr-seg": (3.0, 6.0)}
POST_SHARE_TARGET = 0.10


def _family(alias: str) -> str:
    from maskbench.zoo import get_spec

    return get_spec(alias).family.name


def summary(rows: dict) -> list[str]:
    """The issues' targets, counted from the rows: speed-ups and peak RSS against MMDetection."""
    measured = {alias: row for alias, row in rows.items() if row.get("mmdet")}
    lines = ["Targets (2 cores; speed-up = MMDetection's mean end-to-end / maskbench's):", ""]
    for family, targets in TARGETS.items():
        members = {alias: row for alias, row in measured.items() if _family(alias) == family}
        if not members:
            continue
        for reduced, target in zip((False, True), targets):
            words = f"{family}: best {'reduced precision' if reduced else 'fp32'}"
            found = {alias: best(row, reduced) for alias, row in members.items()}
            ratios = {alias: _mean(row["mmdet"]["seconds"]) / _mean(f[1]["seconds"])
                      for alias, row in members.items() if (f := found[alias])}
            met = [a for a, r in ratios.items() if r >= target]
            each = ", ".join(f"{a} {r:.2f}x" for a, r in ratios.items())
            lines.append(f"- {words} >= {target:.0f}x faster: {len(met)} of {len(members)} ({each}).")
            within = [a for a in members
                      if found[a] and found[a][1]["peak_rss_mb"] <= members[a]["mmdet"]["peak_rss_mb"]]
            lines.append(f"- {words}: peak RSS no higher than MMDetection's for {len(within)} of {len(members)}.")
        if family == "rtmdet-ins":
            shares = {f"{a} {key}": _mean(r["parts"]["postprocess"]) / _mean(r["parts"]["end_to_end"])
                      for a, row in members.items() for key, r in row["maskbench"].items() if r.get("parts")}
            over = [f"{name} {share:.0%}" for name, share in shares.items() if share > POST_SHARE_TARGET]
            above = f" (above: {', '.join(over)})." if over else "."
            lines.append(f"- rtmdet-ins: post-processing <= {POST_SHARE_TARGET:.0%} of end-to-end in "
                         f"{len(shares) - len(over)} of {len(shares)} candidates{above}")
    small, r101 = rows.get("rtmdet-ins-s", {}).get("maskbench", {}), rows.get("r101", {}).get("maskbench", {})
    for key in sorted(set(small) & set(r101)):
        ratio = _mean(r101[key]["seconds"]) / _mean(small[key]["seconds"])
        lines.append(f"- rtmdet-ins-s vs maskbench's r101, {key.replace('/', ' ')}: {ratio:.1f}x faster (target 10x).")
    return lines


def _timing_sentence(info: dict) -> str:
    if info.get("interleave") is None:  # runs made before the timing mode was recorded: one after another
        return "Timed one process after another (each timer's calls in a block of their own)."
    if not info["interleave"]:
        return "Timed one process after another (`--no-interleave`: each timer's calls in a block of their own)."
    return ("Timed **interleaved**: per model, MMDetection's process and every candidate's were prepared one after "
            "another, then took turns call by call (MMDetection, candidate 1, candidate 2, ..., round after round), "
            "exactly one timing at any moment. A speed-up is the ratio of the means; its bracket is the 95 % "
            "interval of the same ratio taken from the pairs of neighbouring calls (MMDetection's k-th over the "
            "candidate's k-th, trimmed geometric mean, paired bootstrap: maskbench.results.intervals).")


def _speedup_interval(mmdet: dict, candidate: dict, info: dict) -> str:
    """`` [low-high]``: the 95 % bootstrap interval of MMDetection's latency / the candidate's,
    from the call pairs when the two were interleaved, else unpaired from the medians (empty with
    fewer than two calls each)."""
    from maskbench.results.intervals import ratio_interval

    a, b = mmdet["seconds"], candidate["seconds"]
    if len(a) < 2 or len(b) < 2:
        return ""
    paired = bool(info.get("interleave")) and len(a) == len(b)
    interval = ratio_interval(a, b, paired=paired)
    return f" [{interval.low:.2f}-{interval.high:.2f}]"


def _rfdetr_intro(info: dict, args) -> list[str]:
    """The page's head when the rows are RF-DETR-Seg's (reference: rfdetr's own predict)."""
    return [
        "# CPU speed: maskbench vs rfdetr 1.11.2 eager",
        "",
        "Same frame, same weights, same thread count, one run. Produced by:",
        "",
        "```",
        "python3 -m venv ../rfdetr-venv && ../rfdetr-venv/bin/pip install rfdetr==1.11.2 torch==2.14.1 "
        "torchvision==0.29.1   # once",
        ".venv/bin/python tools/mmdet_vs_maskbench.py " + " ".join(args.argv),
        "```",
        "",
        f"Machine: {info['cpu']} ({', '.join(info.get('cpu_flags') or []) or 'flags unknown'}), {info['cores']} "
        f"cores, {info['threads']} threads per process; torch {info['torch']}, OpenVINO {info['openvino']}, ONNX "
        f"Runtime {info['onnxruntime']}; {info['date']}; the whole run took {info['wall_min']} min. Frame: "
        f"`{info['image']}` (1600x900), stretched to each size's square input; {info['warmup']} warm-up call(s), "
        f"then the mean of {info['repeat']} timed calls.",
        "",
        _timing_sentence(info).replace("MMDetection", "rfdetr"),
        "",
        "**Weights: random** (rfdetr's parity recipe, seed 0: spread scores, masks on all detections): the same "
        "work as a trained model, no meaningful detections. rfdetr builds each size itself "
        "(`pretrain_weights=None`) and loads these weights.",
        "",
        "What is timed: rfdetr's `model.predict(frame, threshold=0.0)` on the decoded frame (its /255, resize, "
        "normalisation, the network, the top `num_select` pairs and their masks resized to 1600x900: all "
        "detections, as maskbench keeps them); maskbench's end-to-end call on the decoded frame (preprocess, the "
        "runtime with the top-k inside, masks resized to 1600x900 only where they can be positive), in a fresh "
        "process that loads the cached exported graph and frees the eager weights, i.e. as deployed. maskbench "
        "drops detections in a COCO slot without a class (rfdetr keeps them). Peak RSS: the whole process.",
        "",
        "Fidelity: each candidate against fp32 eager PyTorch on the same frame (maskbench.verify.fidelity): the "
        "cosine and relative error of the projector's output (the decoder's memory), detections matched, mean "
        "mask IoU of the matched ones. With random weights the network is chaotic: read the feature numbers "
        "for reduced precision.",
        "",
    ]


def render(rows: dict, info: dict, args) -> str:
    if rows and all(_family(alias) == "rfdetr-seg" for alias in rows):
        return _render(rows, info, args, _rfdetr_intro(info, args), "rfdetr")
    return _render(rows, info, args, _mmdet_intro(info, args), "MMDetection")


def _mmdet_intro(info: dict, args) -> list[str]:
    return [
        "# CPU speed: maskbench vs MMDetection 3.3 eager",
        "",
        "Same frame, same weights, same thread count, one run. Produced by:",
        "",
        "```",
        "tools/oracle/setup.sh   # once: the MMDetection 3.3 reference environment (../oracle-venv)",
        ".venv/bin/python tools/mmdet_vs_maskbench.py " + " ".join(args.argv),
        "```",
        "",
        f"Machine: {info['cpu']} ({', '.join(info.get('cpu_flags') or []) or 'flags unknown'}), {info['cores']} "
        f"cores, {info['threads']} threads per process; torch "
        f"{info['torch']}, OpenVINO {info['openvino']}, ONNX Runtime {info['onnxruntime']}; {info['date']}; the "
        f"whole run took {info['wall_min']} min. Frame: `{info['image']}` (1600x900), "
        + ("resized by each model's keep-ratio pipeline (Mask R-CNN: 1333x750 padded to 1344x768; RTMDet-Ins: "
           "640x360 padded to 640x640 with 114)" if info.get("keep_ratio") else
           "stretched to each model's static input (Mask R-CNN: the study's 1344x800; RTMDet-Ins: 640x640)")
        + f"; {info['warmup']} warm-up call(s), then the mean of {info['repeat']} timed calls.",
        "",
        _timing_sentence(info),
        "",
        "**Weights: random** (seeded, BatchNorm and head outputs calibrated on this frame; exactly 100 "
        "detections per image, mask head on all of them): the same work as a trained model, no meaningful "
        "detections. MMDetection builds each model from its official config and loads these weights.",
        "",
        "What is timed: MMDetection's `inference_detector(model, frame)` on the decoded frame (its test "
        "pipeline, the network, masks pasted at 1600x900); maskbench's end-to-end call on the decoded frame "
        "(preprocess, the runtime, boxes rescaled and masks pasted at 1600x900), in a fresh process that "
        "loads the cached exported graph and frees the eager weights, i.e. as deployed. Peak RSS: the whole "
        "process (model load, compile, every call).",
        "",
        "Fidelity: each candidate against fp32 eager PyTorch on the same frame (maskbench.verify.fidelity): the "
        "worst cosine and relative error of the feature pyramid (Mask R-CNN's five FPN outputs, RTMDet-Ins' three "
        "PAFPN outputs), detections matched, mean mask IoU of the matched ones. With random weights a network is "
        "chaotic (RTMDet-Ins l and x even between fp32 runtimes): reduced precision changes most detections "
        "whatever its quality, so the detection-level numbers of bf16/int8 mean something only with official "
        "weights; read the FPN numbers (random ResNet-family weights also amplify rounding through 100 "
        "layers: their FPN cosine under bf16/int8 says more about the weights than about the runtime; "
        "Swin-T/ConvNeXt-T, with LayerNorm, stay at cosine >= 0.997). fp32 candidates show what a correct "
        "conversion looks like: FPN relative error <= 2.3e-4 and 100/100 detections.",
        "",
    ]


def _render(rows: dict, info: dict, args, intro: list[str], reference: str) -> str:
    lines = intro + [
        f"| model | {reference} eager | best fp32 | speed-up | best reduced precision | speed-up | "
        f"peak RSS {reference} / fp32 / reduced | fidelity of the reduced one (vs fp32 torch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for alias, row in rows.items():
        mmdet = row.get("mmdet")
        fp32, low = best(row, False), best(row, True)
        if not mmdet:
            lines.append(f"| {alias} | failed | | | | | | |")
            continue
        ref = _mean(mmdet["seconds"])
        cells = [alias, f"{ref:.2f} s ({mmdet['detections']} det.)"]
        for found in (fp32, low):
            if found:
                key, r = found
                count = f" ({r['detections']} det.)" if r["detections"] != mmdet["detections"] else ""
                cells += [f"{key.replace('/', ' ')}: {_mean(r['seconds']):.2f} s{count}",
                          f"**{ref / _mean(r['seconds']):.2f}x**{_speedup_interval(mmdet, r, info)}"]
            else:
                cells += ["none", ""]
        rss = [f"{mmdet['peak_rss_mb'] / 1024:.2f}"] + [f"{f[1]['peak_rss_mb'] / 1024:.2f}" if f else "-"
                                                          for f in (fp32, low)]
        cells.append(" / ".join(rss) + " GB")
        cells.append(_fidelity_cell(row, low[0]) if low else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(line.replace("MMDetection", reference) for line in summary(rows))]
    lines += ["", "## Every candidate", "",
              "| model | runtime | precision | end-to-end s | preprocess ms (share) | network s | postprocess ms "
              "(share) | peak / steady RSS GB | detections | fidelity vs fp32 torch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for alias, row in rows.items():
        mmdet = row.get("mmdet")
        if mmdet:
            lines.append(f"| {alias} | {reference} eager | fp32 | {_mean(mmdet['seconds']):.2f} | | | | "
                         f"{mmdet['peak_rss_mb'] / 1024:.2f} / {mmdet['steady_rss_mb'] / 1024:.2f} | "
                         f"{mmdet['detections']} | |")
        for key, r in row.get("maskbench", {}).items():
            p = {name: _mean(v) for name, v in r["parts"].items()}
            pre, post = p["preprocess"] / p["end_to_end"], p["postprocess"] / p["end_to_end"]
            lines.append(
                f"| {alias} | {r['runtime']} | {r['precision']} | {p['end_to_end']:.2f} | {p['preprocess'] * 1e3:.0f} "
                f"({pre:.1%}) | {p['inference']:.2f} | {p['postprocess'] * 1e3:.0f} ({post:.1%}) | "
                f"{r['peak_rss_mb'] / 1024:.2f} / "
                f"{r['steady_rss_mb'] / 1024:.2f} | {r['detections']} | {_fidelity_cell(row, key)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(STUDY))
    parser.add_argument("--candidates", nargs="+", default=[f"{r}/{p}" for r, p in CANDIDATES])
    parser.add_argument("--camera", default=DEFAULT_IMAGE)
    parser.add_argument("--oracle", default=str(REPO.parent / "oracle-venv"), help="MMDetection's environment")
    parser.add_argument("--rfdetr-env", default=str(REPO.parent / "rfdetr-venv"), help="rfdetr's environment")
    parser.add_argument("--workdir", default=str(REPO / "out" / "mmdet_vs_maskbench"))
    parser.add_argument("--out", default=str(REPO / "docs" / "cpu-speed.md"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-ratio", action="store_true", help="each model's keep-ratio pipeline (default: stretch)")
    parser.add_argument("--fresh", action="store_true", help="redo every step (default: reuse prepared weights)")
    parser.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=True,
                        help="MMDetection and the candidates take turns, one timed call each per round (default); "
                             "--no-interleave: one process after another")
    parser.add_argument("--reply-fd", type=int, default=None, help=argparse.SUPPRESS)  # internal: the control channel
    parser.add_argument("--render-only", action="store_true", help="rewrite --out from the JSON beside it")
    # internal: one step in its own process
    parser.add_argument("--prepare", metavar="MODEL")
    parser.add_argument("--time-one", nargs=3, metavar=("MODEL", "RUNTIME", "PRECISION"))
    parser.add_argument("--image")
    parser.add_argument("--checkpoint")
    parser.add_argument("--json")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if args.prepare:
        candidates = [tuple(c.split("/")) for c in args.candidates]
        result = prepare(args.prepare, Path(args.image), Path(args.workdir), candidates, args.threads, args.keep_ratio)
        Path(args.json).write_text(json.dumps(result, indent=1))
        return 0
    if args.time_one:
        alias, runtime_name, precision = args.time_one
        result = time_deployed(alias, runtime_name, precision, Path(args.checkpoint), Path(args.image), args.threads,
                               args.warmup, args.repeat, args.keep_ratio, _control(args.reply_fd))
        Path(args.json).write_text(json.dumps(result, indent=1))
        return 0
    if args.render_only:  # the tables again from the JSON kept beside them (no timing)
        kept = json.loads(Path(args.out).with_suffix(".json").read_text())
        Path(args.out).write_text(render(kept["rows"], kept["info"], argparse.Namespace(argv=kept["info"]["argv"])))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
