"""How chaotic is a calibrated random-weight model? Eager vs eager with tiny input noise, on one
embedded frame at 1344x800 (the yardstick for conversion-check disagreements): FPN features
(worst cosine and relative error over P2..P6) and detections.

    .venv/bin/python tools/chaos_probe.py s101 [CAMERA]     (default CAM_FRONT_LEFT)

The model is calibrated on the three study cameras, as tools/conversion_check_full.py does.
"""
import sys

import torch

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.detector import to_detections
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.verify.compare import compare_detections
from maskbench.verify.features import compare_features, eager_outputs

if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    sys.exit(print(__doc__))
alias = sys.argv[1]
camera = sys.argv[2] if len(sys.argv) > 2 else "CAM_FRONT_LEFT"
frames = load_frames(cameras=["CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT"])
loaded = calibrated_random_model(alias, frames, ResizeMode.STRETCH, (1344, 800))
spec = loaded.spec
frame = next(f for f in frames if f.camera == camera)
tensor, meta = preprocess(frame.image, ResizeMode.STRETCH, None, spec.input_format)
reference_raw, reference_features = eager_outputs(loaded, tensor, meta.img_shape)
reference = to_detections(reference_raw, meta, spec.family)
generator = torch.Generator().manual_seed(0)
for eps in (1e-6, 1e-5):
    noisy = tensor + eps * torch.randn(tensor.shape, generator=generator)
    raw, features = eager_outputs(loaded, noisy, meta.img_shape)
    levels = compare_features(reference_features, features)
    worst_cosine, worst_error = min(c for c, _ in levels), max(e for _, e in levels)
    out = to_detections(raw, meta, spec.family)
    print(f"{alias} {camera} input noise {eps:g}: FPN cosine {worst_cosine:.6f}, rel. error {worst_error:.2e}; "
          f"{compare_detections(reference, out)}", flush=True)
