"""What an OpenVINO model spends its time on, by layer kind and by the precision each layer ran in:
the question "what keeps int8 slow" (issue 29) answered from OpenVINO's own per-node counters.

    .venv/bin/python tools/int8_layers.py --models r101,rtmdet-ins-s --precisions int8,fp32 \
        --out out/perf/int8-layers.md

For each model x precision: the graph the benchmark would run (the int8 artifact for int8, NNCF
calibrated on the embedded frames as the runtime does) at the family's stretch size (the
benchmark's default input: 1344x800 for Mask R-CNN, 640x640 for RTMDet-Ins), compiled with the benchmark's own CPU
config plus ``PERF_COUNT``; after two untimed calls, ``--repeat`` profiled calls on one frame.
Each executed node's ``real_time`` goes to (kind, precision it ran in): kind is ``matrix``
(convolutions, matrix products: the work int8 speeds up), ``reorder`` (layout and precision
conversions the plugin inserts), ``nms/topk``, or ``other`` (element-wise subgraphs, resizes,
gathers...); the precision is the suffix of the node's ``exec_type`` (``jit_avx2_I8`` -> int8).
Also listed: the slowest matrix layers that did not run in the precision asked for (what NNCF or
the plugin left in f32). The node times add up to less than a call's wall time (the plugin's own
work between nodes): both are printed. Random weights, calibrated (the layers' work does not
depend on the values, except NMS's input sizes).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MATRIX_TYPES = {"Convolution", "GroupConvolution", "Deconvolution", "MatMul", "FullyConnected",
                "BinaryConvolution", "ConvolutionBackpropData"}
PRECISION_OF_SUFFIX = {"i8": "int8", "u8": "int8", "bf16": "bf16", "f32": "f32", "fp32": "f32", "f16": "f16",
                       "i32": "i32", "i64": "i64"}
ASKED = {"int8": "int8", "bf16": "bf16", "fp32": "f32"}


@dataclass
class LayerTimes:
    """Milliseconds per call by (kind, precision), and each matrix layer's own."""

    by_kind: dict[tuple[str, str], float] = field(default_factory=lambda: collections.defaultdict(float))
    nodes: dict[tuple[str, str], int] = field(default_factory=lambda: collections.defaultdict(int))
    matrix_layers: dict[tuple[str, str, str], float] = field(default_factory=lambda: collections.defaultdict(float))
    wall_ms: float = 0.0


def kind_of(node_type: str) -> str:
    if node_type in MATRIX_TYPES:
        return "matrix"
    if node_type == "Reorder":
        return "reorder"
    if node_type in {"NonMaxSuppression", "TopK", "MulticlassNms", "MatrixNms"}:
        return "nms/topk"
    return "other"


def precision_of(exec_type: str) -> str:
    return PRECISION_OF_SUFFIX.get(exec_type.rsplit("_", 1)[-1].lower(), exec_type.rsplit("_", 1)[-1].lower())


def profile(model: str, precision: str, threads: int, repeat: int, camera: str) -> LayerTimes:
    import openvino as ov

    from maskbench.data.frames import load_frames
    from maskbench.export.calibration import calibrated_random_model
    from maskbench.export.onnx_export import graph_feeds
    from maskbench.models.inputs import preprocess
    from maskbench.pipeline.graph_sessions import compile_config
    from maskbench.pipeline.preprocess import ResizeMode
    from maskbench.runtimes import get_runtime

    frame = load_frames(cameras=[camera])[0]
    mode = ResizeMode.STRETCH  # the benchmark's default: the family's stretch size
    loaded = calibrated_random_model(model, [frame], mode, None)
    tensor, meta = preprocess(frame.image, mode, None, loaded.spec.input_format)
    runtime = get_runtime("openvino", loaded, precision=precision, threads=threads)
    target = runtime.graph_target(tensor, meta.img_shape)
    _, path = runtime.graph_files(target)
    compiled = ov.Core().compile_model(str(path), "CPU", {**compile_config(threads, precision), "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    feeds = graph_feeds(tensor, meta.img_shape, target)
    for _ in range(2):
        request.infer(feeds)
    times = LayerTimes()
    for _ in range(repeat):
        start = time.perf_counter()
        request.infer(feeds)
        times.wall_ms += 1000.0 * (time.perf_counter() - start) / repeat
        for info in request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            ms = info.real_time.total_seconds() * 1000.0 / repeat
            key = (kind_of(info.node_type), precision_of(info.exec_type))
            times.by_kind[key] += ms
            times.nodes[key] += 1
            if key[0] == "matrix":
                times.matrix_layers[(info.node_name, info.node_type, info.exec_type)] += ms
    for key in times.nodes:
        times.nodes[key] //= repeat
    return times


def report(model: str, precision: str, times: LayerTimes, top: int) -> list[str]:
    total = sum(times.by_kind.values())
    lines = [f"### {model} {precision}: {times.wall_ms:,.1f} ms per call, {total:,.1f} ms in nodes", "",
             "| kind | ran in | nodes | ms | share of node time |", "|---|---|---|---|---|"]
    for (kind, ran_in), ms in sorted(times.by_kind.items(), key=lambda item: -item[1]):
        lines.append(f"| {kind} | {ran_in} | {times.nodes[(kind, ran_in)]} | {ms:,.1f} | {100.0 * ms / total:.1f} % |")
    asked = ASKED[precision]
    others = sorted(((ms, name, node_type, exec_type) for (name, node_type, exec_type), ms
                     in times.matrix_layers.items() if precision_of(exec_type) != asked), reverse=True)
    if others:
        lines += ["", f"Slowest matrix layers not in {asked}:", "", "| layer | type | exec_type | ms |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {node_type} | {exec_type} | {ms:,.2f} |"
                  for ms, name, node_type, exec_type in others[:top]]
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="r101,rtmdet-ins-s")
    parser.add_argument("--precisions", default="int8,fp32")
    parser.add_argument("--threads", type=int, default=None, help="default: one per core")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--camera", default="CAM_FRONT")
    parser.add_argument("--top", type=int, default=8, help="matrix layers listed per model")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = parser.parse_args(argv)

    import os
    from importlib.metadata import version

    from maskbench.utils.machine import cpu_model, notable_cpu_flags

    threads = args.threads or len(os.sched_getaffinity(0))
    lines = [f"CPU: {cpu_model()} ({', '.join(notable_cpu_flags())}), {threads} threads; "
             f"openvino {version('openvino')}, nncf {version('nncf')}; load average {os.getloadavg()[0]:.1f}", ""]
    print(lines[0], flush=True)
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            block = report(model, precision, profile(model, precision, threads, args.repeat, args.camera), args.top)
            print("\n".join(block), flush=True)
            lines += block
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
