"""Where OpenVINO spends its time: per-layer-type and per-node profile of one model at 1344x800
(fp32, 2 threads, PERF_COUNT) on the embedded front frame.

    .venv/bin/python tools/openvino_profile.py r101
"""
import collections, sys, time

import openvino as ov
from maskbench.runtimes.conversion_check import load_frames, calibrated_random_model
from maskbench.runtimes.onnx_export import ExportTarget, export_onnx
from maskbench.preprocess import ResizeMode, preprocess
frames = load_frames(cameras=["CAM_FRONT"])
loaded = calibrated_random_model(sys.argv[1], frames, ResizeMode.STRETCH, (1344, 800))
t, meta = preprocess(frames[0].image, ResizeMode.STRETCH, None, loaded.spec.pixel_mean, loaded.spec.pixel_std)
path = export_onnx(loaded, ExportTarget.for_input(t, meta.img_shape, ResizeMode.STRETCH))
core = ov.Core()
cm = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": "2", "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": "YES", "PERFORMANCE_HINT": "LATENCY"})
req = cm.create_infer_request()
feeds = {"images": t.numpy()}
req.infer(feeds)
t0 = time.perf_counter(); req.infer(feeds); print("infer s", time.perf_counter() - t0)
by_type = collections.Counter(); by_name = collections.Counter()
for p in req.get_profiling_info():
    us = p.real_time.total_seconds() * 1e6
    by_type[p.node_type + "/" + p.exec_type] += us; by_name[p.node_name] += us
total = sum(by_type.values())
print("total ms", total / 1000)
for k, v in by_type.most_common(12): print(f"{v/1000:9.1f} ms {100*v/total:5.1f}%  {k}")
print("--- top nodes")
for k, v in by_name.most_common(12): print(f"{v/1000:9.1f} ms  {k}")
