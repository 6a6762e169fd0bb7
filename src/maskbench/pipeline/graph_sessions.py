"""The session settings of the graph runtimes, without torch: ONNX Runtime's session options and
OpenVINO's compile config. The benchmark's runtimes (:mod:`.onnxruntime_`, :mod:`.openvino_`)
and the torch-free deployment (:mod:`maskbench.deploy`) both build their sessions here, so a
deployed bundle runs with the very settings that were timed."""

from __future__ import annotations

OPENVINO_DEVICE = "CPU"  # "GPU" (Intel iGPU) would go here later
# int8 lives in the quantized graph (FakeQuantize nodes); the hint is for everything else.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def ort_session_options(ort, threads: int):
    """``threads`` intra-op threads, one inter-op thread, sequential execution, errors only."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no warnings per unused initialiser
    return options


def compile_config(threads: int, precision: str = "fp32") -> dict[str, str]:
    """OpenVINO's CPU config: ``threads``, the precision hint set explicitly (the plugin would
    otherwise pick bf16 on its own where the CPU has it), the latency hint."""
    return {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY"}


# What OpenVINO must list among the CPU's OPTIMIZATION_CAPABILITIES to run a precision natively
# (without it the plugin silently runs f32 or emulates, and the result would be labelled wrongly).
NATIVE_CAPABILITY = {"bf16": "BF16", "int8": "INT8"}
FIX_WITHOUT = {"bf16": "use --precision fp32, or a CPU with AVX512-BF16/AMX", "int8": "use --precision fp32"}


def missing_native_precision(capabilities: list[str], precision: str) -> str | None:
    """Why OpenVINO cannot run ``precision`` natively on a CPU with ``capabilities``, or None."""
    needed = NATIVE_CAPABILITY.get(precision)
    if needed is None or needed in capabilities:
        return None
    return f"this CPU cannot run {precision} natively (OpenVINO reports: {', '.join(capabilities)})"
