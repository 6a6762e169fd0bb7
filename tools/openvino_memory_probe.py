"""Where OpenVINO's resident memory goes: compile, then inference, for one exported graph and
compile settings (the open peak-RSS point of docs/cpu-speed.md).

    .venv/bin/python tools/openvino_memory_probe.py GRAPH.onnx ['{"NUM_STREAMS": "1"}']

GRAPH.onnx: an exported graph from the cache (e.g. ~/.cache/maskbench/onnx/r101_stretch_1344x800_*.onnx,
made by `maskbench export` or any benchmark run). Prints the RSS added by compiling (after the
allocator returned what it freed) and by the first inferences, and the first call's time.
"""
import ctypes
import json
import sys
import time

import numpy as np
import openvino as ov

from maskbench.runtimes.openvino_ import DEVICE, compile_config


def rss_mb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    sys.exit(print(__doc__))
path = sys.argv[1]
extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
core = ov.Core()
before = rss_mb()
compiled = core.compile_model(path, DEVICE, {**compile_config(2, "fp32"), **extra})
ctypes.CDLL("libc.so.6").malloc_trim(0)
after_compile = rss_mb()
request = compiled.create_infer_request()
height, width = (int(d) for d in compiled.input("images").get_partial_shape().to_shape()[2:])
images = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
start = time.perf_counter()
request.infer({"images": images})
first_s = time.perf_counter() - start
request.infer({"images": images})
print(f"{extra or 'default settings'}: compiled +{after_compile - before} MB, "
      f"inference +{rss_mb() - after_compile} MB, first call {first_s:.2f} s")
