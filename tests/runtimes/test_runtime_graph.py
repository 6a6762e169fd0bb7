"""The exported computation, piece by piece, on synthetic inputs (seconds, no backbone):

- ``select_detections_graph`` equals ``roi_heads.select_detections`` bit for bit in eager mode,
  in every branch of ``fixed_count`` (many/few candidates, top-up with suppressed boxes, copies
  of the best when there are fewer than 100 candidates in all) and without it;
- the same function exported alone to ONNX gives the same detections on ONNX Runtime and
  OpenVINO where the branches go either way at run time (the tracer froze none of them);
- ``extract_rois`` equals ``RoIExtractor`` and, exported, copes with FPN levels that get no RoI
  (the naive export failed there).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from maskbench.export.graph import extract_rois, select_detections_graph
from maskbench.export.onnx_export import _nms_sorted_by_score
from maskbench.models.mask_rcnn.roi_heads import DetectionConfig, RoIExtractor, select_detections

IMG_SHAPE = (192, 320)
FIXED = replace(DetectionConfig(), fixed_count=True)

# name -> (config, logit scale): which branch each case takes is asserted in the first test.
CASES = {
    "many-pass": (replace(FIXED, min_candidates=1000), 2.0),
    "few-pass-topk": (replace(FIXED, min_candidates=3000), 1.0),
    "fill-with-suppressed": (replace(FIXED, score_thr=0.99, min_candidates=150), 1.0),
    "fewer-than-100-candidates": (replace(FIXED, score_thr=0.99, min_candidates=40), 1.0),
    "no-fixed-count": (DetectionConfig(), 3.0),
}


def _head_outputs(seed: int, num_rois: int = 300, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_rois, 2, generator=gen) * torch.tensor([280.0, 160.0])
    wh = 8 + torch.rand(num_rois, 2, generator=gen) * 120
    proposals = torch.cat([xy, (xy + wh).minimum(torch.tensor([320.0, 192.0]))], dim=1)
    cls_logits = torch.randn(num_rois, 81, generator=gen) * scale
    box_deltas = torch.randn(num_rois, 320, generator=gen) * 0.5
    return cls_logits, box_deltas, proposals


def _passing(cls_logits, config):
    return int((torch.softmax(cls_logits, -1)[:, :-1] > config.score_thr).sum())


@pytest.mark.parametrize("case", CASES)
def test_graph_selection_equals_eager_in_every_branch(case):
    config, scale = CASES[case]
    for seed in range(3):
        inputs = _head_outputs(seed, scale=scale)
        passing = _passing(inputs[0], config)
        if case == "many-pass":
            assert passing >= config.min_candidates
        elif config.fixed_count:
            assert passing < config.min_candidates
        eager = select_detections(*inputs, IMG_SHAPE, config)
        graph = select_detections_graph(*inputs, IMG_SHAPE, config)
        for a, b in zip(eager, graph):
            assert torch.equal(a, b), case
        assert eager[0].shape[0] == (100 if config.fixed_count else min(100, eager[0].shape[0]))


class _Selection(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config

    def forward(self, cls_logits, box_deltas, proposals):
        return select_detections_graph(cls_logits, box_deltas, proposals, IMG_SHAPE, self.config)


def _export(module, args, path, input_names, output_names, dynamic_axes):
    with torch.no_grad(), _nms_sorted_by_score(17):
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes)


def _runners(path):
    import onnxruntime as ort
    import openvino as ov

    from maskbench.runtimes.openvino_ import compile_config

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compiled = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU", compile_config(1))

    def run_ov(feeds):
        result = compiled(feeds)
        return [result[out] for out in compiled.outputs]

    return {"onnxruntime": lambda feeds: session.run(None, feeds), "openvino": run_ov}


def _assert_same_detections(eager, other, atol=1e-3):
    boxes, scores, labels = (t.numpy() for t in eager)
    o_boxes, o_scores, o_labels = other[0], other[1], other[2]
    assert o_boxes.shape == boxes.shape
    free = np.ones(len(o_scores), dtype=bool)
    for i in range(len(scores)):
        hit = np.where(free & (o_labels == labels[i]) & (np.abs(o_boxes - boxes[i]).max(axis=1) < atol)
                       & (np.abs(o_scores - scores[i]) < 1e-5))[0]
        assert hit.size, f"detection {i} of eager missing"
        free[hit[0]] = False


@pytest.mark.parametrize("fixed_count", [True, False], ids=["fixed-count", "no-fixed-count"])
def test_exported_selection_takes_both_branches_at_run_time(tmp_path, fixed_count):
    """Traced on a frame where many pass; run where few pass, where suppressed boxes top up,
    and where there are fewer than 100 candidates: all as eager."""
    config = replace(DetectionConfig(), fixed_count=fixed_count, min_candidates=3000)
    path = tmp_path / "select.onnx"
    trace_inputs = _head_outputs(0, num_rois=1000, scale=2.0)
    assert _passing(trace_inputs[0], config) >= 3000
    _export(_Selection(config), trace_inputs, path, ["cls_logits", "box_deltas", "proposals"],
            ["boxes", "scores", "labels"], {"cls_logits": {0: "n"}, "box_deltas": {0: "n"}, "proposals": {0: "n"},
                                             "boxes": {0: "d"}, "scores": {0: "d"}, "labels": {0: "d"}})
    runners = _runners(path)
    # many pass / few pass (top-k branch) / only 20 RoIs = 1600 class scores < min_candidates
    # and, with 1 RoI, 80 candidates < 100 detections (copies of the best).
    for seed, num_rois, scale in ((1, 1000, 2.0), (2, 300, 1.0), (3, 20, 1.0), (4, 1, 1.0)):
        inputs = _head_outputs(seed, num_rois, scale)
        if fixed_count:
            assert (_passing(inputs[0], config) >= 3000) == (num_rois == 1000)
        eager = select_detections(*inputs, IMG_SHAPE, config)
        feeds = dict(zip(["cls_logits", "box_deltas", "proposals"], (t.numpy() for t in inputs)))
        for _name, run in runners.items():
            _assert_same_detections(eager, run(feeds))


def _rois(levels_wanted, seed=0):
    """RoIs whose sizes map to the wanted FPN levels (sqrt(area) 20 / 150 / 300 / 500 px)."""
    gen = torch.Generator().manual_seed(seed)
    sides = {0: 20.0, 1: 150.0, 2: 300.0, 3: 500.0}
    rows = []
    for level in levels_wanted:
        x, y = (torch.rand(2, generator=gen) * 50).tolist()
        side = sides[level]
        rows.append([0.0, x, y, x + side, y + side])
    return torch.tensor(rows)


def test_roi_extraction_with_empty_levels_matches_eager(tmp_path):
    extractor = RoIExtractor(output_size=7)
    gen = torch.Generator().manual_seed(0)
    features = [torch.randn(1, 8, 160 // s, 160 // s, generator=gen) for s in (4, 8, 16, 32)]
    all_levels = _rois([0, 1, 2, 3, 0, 2, 1, 3])
    for rois in (all_levels, _rois([0, 0, 0]), _rois([3, 1])):
        assert torch.equal(extractor(features, rois), extract_rois(extractor, features, rois))

    class Pool(torch.nn.Module):
        def forward(self, f0, f1, f2, f3, rois):
            return extract_rois(extractor, [f0, f1, f2, f3], rois)

    path = tmp_path / "rois.onnx"
    names = ["f0", "f1", "f2", "f3", "rois"]
    _export(Pool(), (*features, all_levels), path, names, ["pooled"], {"rois": {0: "k"}, "pooled": {0: "k"}})
    runners = _runners(path)
    for rois in (_rois([0, 0, 0]), _rois([3, 1]), _rois([2, 0, 3, 1, 1], seed=1)):
        expected = extractor(features, rois).numpy()
        feeds = dict(zip(names, [f.numpy() for f in features] + [rois.numpy()]))
        for name, run in runners.items():
            np.testing.assert_allclose(run(feeds)[0], expected, atol=1e-4, err_msg=name)
