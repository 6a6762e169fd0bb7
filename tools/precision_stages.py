"""Which dense stage of a network does reduced precision hurt? Each stage alone in fp16 or bf16
(eager PyTorch on the CPU, the others in fp32), then all of them, against fp32 on the same frame.

Why: RF-DETR-Seg's upstream forces OpenVINO to f32 because f16 collapses its class scores, and
TensorRT fp16 exports gave near-zero confidences (rf-detr issue 649); issue 28 asks which part
must stay in fp32 for the scores to survive, measured. The stages are the model's own
``dense_modules()`` (maskbench's reduced-precision runtimes convert exactly those), so this
works for every family.

    .venv/bin/python tools/precision_stages.py --model rfdetr-seg-n [--precisions fp16,bf16] [--weights random]

Per row: values outside the precision's range (inf/nan in the stage's output), the top score
(a collapse shows as a top score near 0), the detections matched to fp32 (box IoU >= 0.5, same
class), the largest score difference among them, the mean mask IoU. With random weights
(calibrated: 100 detections, masks on all) the network is chaotic and only large effects say
something (docs/precision.md); with ``--weights official`` (or a checkpoint) it answers for the
trained model.
"""

from __future__ import annotations

import argparse
import copy

import torch

from maskbench.data.frames import load_frames
from maskbench.export.calibration import calibrated_random_model
from maskbench.models.detector import to_detections
from maskbench.models.factory import create_model
from maskbench.models.inputs import preprocess
from maskbench.pipeline.preprocess import ResizeMode
from maskbench.runtimes.torch_ import in_precision
from maskbench.verify.compare import compare_detections


def with_stages_in(model, indices: list[int], precision: str):
    """A copy of ``model`` whose dense stages ``indices`` compute in ``precision``, and a list that
    collects whether each such stage's output had a value outside the precision's range."""
    copied = copy.deepcopy(model).eval()
    stages, modules = copied.dense_stages(), copied.dense_modules()
    overflow: list[bool] = []

    def note(_module, _inputs, output) -> None:
        tensors = output if isinstance(output, (list, tuple)) else [output]
        overflow.append(any(not torch.isfinite(t).all() for t in tensors if isinstance(t, torch.Tensor)))

    for index in indices:
        owner, attribute = stages[index]
        if precision == "fp16":
            modules[index].half()
        modules[index].register_forward_hook(note)
        setattr(owner, attribute, in_precision(getattr(owner, attribute), precision, "cpu"))
    return copied, overflow


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--precisions", default="fp16,bf16")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--camera", default="CAM_FRONT")
    args = parser.parse_args()
    frame = load_frames(cameras=[args.camera])[0]
    if args.weights == "random":
        loaded = calibrated_random_model(args.model, [frame], ResizeMode.STRETCH, None)
    else:
        loaded = create_model(args.model, args.weights)
    model = loaded.model.eval()
    tensor, meta = preprocess(frame.image, ResizeMode.STRETCH, None, loaded.spec.input_format)
    family = loaded.spec.family

    def detections(network):
        with torch.no_grad():
            (raw,) = network(tensor, [meta.img_shape])
        return to_detections(raw, meta, family, network.detection_config.mask_thr_binary)

    reference = detections(model)
    names = [type(module).__name__ for module in model.dense_modules()]
    print(f"{loaded.spec.name}, weights {loaded.weights}, {frame.path}: fp32 top score "
          f"{reference.scores.max():.4f}, {len(reference)} detections; dense stages: {', '.join(names)}")
    print("| precision | stages in it | out of range | top score | matched to fp32 | max score diff | mean mask IoU |")
    print("|---|---|---|---|---|---|---|")
    for precision in args.precisions.split(","):
        for label, indices in [*((name, [i]) for i, name in enumerate(names)), ("all", list(range(len(names))))]:
            network, overflow = with_stages_in(model, indices, precision)
            candidate = detections(network)
            agreement = compare_detections(reference, candidate)
            top = float(candidate.scores.max()) if len(candidate) else float("nan")
            print(f"| {precision} | {label} | {'yes' if any(overflow) else 'no'} | {top:.4f} | "
                  f"{agreement.matched}/{len(reference)} | {agreement.max_score_diff:.2e} | "
                  f"{agreement.mean_mask_iou:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
