"""How chaotic is a calibrated random-weight model? Eager vs eager with tiny input noise, on one
embedded frame at 1344x800 (the yardstick for conversion-check disagreements).

    .venv/bin/python tools/chaos_probe.py s101
"""
import sys, torch
from maskbench.runtimes.conversion_check import load_frames, calibrated_random_model
from maskbench.preprocess import ResizeMode, preprocess
from maskbench.postprocess import to_detections
from maskbench.compare import compare_detections
alias = sys.argv[1]
frames = load_frames(cameras=["CAM_FRONT","CAM_FRONT_LEFT","CAM_FRONT_RIGHT"])
loaded = calibrated_random_model(alias, frames, ResizeMode.STRETCH, (1344, 800))
spec = loaded.spec
f = frames[1]
t, meta = preprocess(f.image, ResizeMode.STRETCH, None, spec.pixel_mean, spec.pixel_std)
ref = to_detections(loaded.model(t, [meta.img_shape])[0], meta)
g = torch.Generator().manual_seed(0)
for eps in (1e-6, 1e-5):
    noisy = t + eps * torch.randn(t.shape, generator=g)
    out = to_detections(loaded.model(noisy, [meta.img_shape])[0], meta)
    print(alias, f.camera, "input noise", eps, compare_detections(ref, out))
