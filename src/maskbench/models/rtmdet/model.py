"""RTMDet-Ins, inference only, computing what MMDetection 3.3 computes (``CSPNeXt`` backbone,
``CSPNeXtPAFPN`` neck, ``RTMDetInsSepBNHead`` and its ``predict_by_feat``).

The forward pass stops at each detection's mask logits at stride 8 of the padded input:
MMDetection then upsamples them 8x (bilinear), optionally rescales to the original image,
crops and thresholds; all of that is post-processing outside the network, as for Mask R-CNN.

Details of MMDetection's head that decide the numbers (read in ``rtmdet_ins_head.py``):
- the regression branch *is* the classification branch (``reg_convs`` is the same list as
  ``cls_convs``), so one tower feeds both ``rtm_cls`` and ``rtm_reg``; the 3x3 convs of that
  tower are shared across levels, its BNs are not; the kernel tower is separate per level;
- distances are ``relu(rtm_reg(x)) * stride`` (no exp), scores are sigmoids, no objectness and
  no score factors; boxes with zero width or height (after clamping) are dropped before NMS
  (``min_bbox_size=0`` keeps ``w > 0 and h > 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...zoo import ModelSpec, RTMDetOptions  # the zoo table holds one per size
from ..backbones.cspnext import ConvModule, CSPLayer, CSPNeXt
from ..detector import Detector, FamilyModel, RawDetections
from ..nms import batched_nms, fill_with_suppressed

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class RTMDetTestConfig:
    """MMDetection's RTMDet-Ins ``test_cfg`` plus maskbench's fixed-count benchmark switch.

    ``fixed_count``: always exactly ``max_per_img`` detections (benchmarks on random weights):
    when fewer than ``min_candidates`` (prior, class) scores pass ``score_thr`` in all levels
    together, the best ``min_candidates`` enter NMS instead, and the best suppressed candidates
    fill what NMS leaves short (as :class:`maskbench.models.mask_rcnn.roi_heads.DetectionConfig`).
    ``min_bbox_size``: MMDetection's; boxes must be wider and taller than it (negative: off).
    """

    nms_pre: int = 1000
    score_thr: float = 0.05
    iou_threshold: float = 0.6
    max_per_img: int = 100
    mask_thr_binary: float = 0.5
    fixed_count: bool = False
    min_candidates: int = 1000
    min_bbox_size: float = 0.0


class CSPNeXtPAFPN(nn.Module):
    """PAFPN: top-down (reduce 1x1, nearest 2x, concat, CSP) then bottom-up (3x3 stride 2,
    concat, CSP), then a 3x3 conv per level to ``out_channels``. The bottom-up path concatenates
    the *reduced* top-down maps, as MMDetection's (it overwrites them in place)."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_csp_blocks: int,
                 expand_ratio: float = 0.5) -> None:
        super().__init__()
        c = list(in_channels)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for i in range(len(c) - 1, 0, -1):
            self.reduce_layers.append(ConvModule(c[i], c[i - 1], 1))
            self.top_down_blocks.append(CSPLayer(2 * c[i - 1], c[i - 1], num_csp_blocks, False, False, expand_ratio))
        self.downsamples = nn.ModuleList(ConvModule(c[i], c[i], 3, stride=2) for i in range(len(c) - 1))
        self.bottom_up_blocks = nn.ModuleList(
            CSPLayer(2 * c[i], c[i + 1], num_csp_blocks, False, False, expand_ratio) for i in range(len(c) - 1)
        )
        self.out_convs = nn.ModuleList(ConvModule(ch, out_channels, 3) for ch in c)

    def forward(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        top = inputs[-1]
        reduced: list[Tensor] = []  # fine to coarse once complete
        for k, i in enumerate(range(len(inputs) - 1, 0, -1)):
            top = self.reduce_layers[k](top)
            reduced.insert(0, top)
            upsampled = F.interpolate(top, scale_factor=2.0, mode="nearest")
            top = self.top_down_blocks[k](torch.cat([upsampled, inputs[i - 1]], dim=1))
        outs = [top]
        for i in range(len(inputs) - 1):
            outs.append(self.bottom_up_blocks[i](torch.cat([self.downsamples[i](outs[-1]), reduced[i]], dim=1)))
        return [conv(x) for conv, x in zip(self.out_convs, outs)]


class MaskFeatModule(nn.Module):
    """Prototypes: the coarser levels bilinearly resized to stride 8, concatenated, fused 1x1,
    four 3x3 ConvModules, projected 1x1 to ``num_prototypes`` channels."""

    def __init__(self, in_channels: int, feat_channels: int, num_levels: int = 3, num_prototypes: int = 8,
                 stacked_convs: int = 4) -> None:
        super().__init__()
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(*(ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3)
                                             for i in range(stacked_convs)))
        self.projection = nn.Conv2d(feat_channels, num_prototypes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        fused = torch.cat([features[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                                          for f in features[1:]], dim=1)
        return self.projection(self.stacked_convs(self.fusion_conv(fused)))


def dynamic_param_sizes(num_prototypes: int = 8, channels: int = 8, num_convs: int = 3) -> tuple[list[int], list[int]]:
    """Weight and bias counts of the per-instance 1x1 convs; the first one also sees the two
    relative-coordinate channels, the last one has a single output (the mask logit)."""
    weights, biases = [], []
    for i in range(num_convs):
        cin = num_prototypes + 2 if i == 0 else channels
        cout = 1 if i == num_convs - 1 else channels
        weights.append(cin * cout)
        biases.append(cout)
    return weights, biases


class RTMDetInsSepBNHead(nn.Module):
    """Per level: a cls/reg tower and a kernel tower (``stacked_convs`` ConvModules each), 1x1
    predictions ``rtm_cls`` / ``rtm_reg`` / ``rtm_kernel``; plus the prototype ``mask_head``.

    ``reg_convs`` is the very same ``ModuleList`` as ``cls_convs`` (as in MMDetection), and the
    tower's convs of levels 1, 2 are those of level 0: a checkpoint lists them under every name,
    ``parameters()`` counts them once."""

    def __init__(self, num_classes: int = 80, in_channels: int = 256, feat_channels: int = 256,
                 stacked_convs: int = 2, num_prototypes: int = 8, dyconv_channels: int = 8, num_dyconvs: int = 3,
                 strides: Sequence[int] = STRIDES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.num_prototypes = num_prototypes
        self.dyconv_channels = dyconv_channels
        self.weight_nums, self.bias_nums = dynamic_param_sizes(num_prototypes, dyconv_channels, num_dyconvs)
        self.num_gen_params = sum(self.weight_nums) + sum(self.bias_nums)

        def tower() -> nn.ModuleList:
            return nn.ModuleList(ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3)
                                 for i in range(stacked_convs))

        self.cls_convs = nn.ModuleList(tower() for _ in self.strides)
        self.reg_convs = self.cls_convs
        self.kernel_convs = nn.ModuleList(tower() for _ in self.strides)
        first_level = cast(nn.ModuleList, self.cls_convs[0])
        for level in self.cls_convs[1:]:  # share_conv=True: shared convs, separate BNs
            for conv, first in zip(cast(nn.ModuleList, level), first_level):
                conv.conv = first.conv
        self.rtm_cls = nn.ModuleList(nn.Conv2d(feat_channels, num_classes, 1) for _ in self.strides)
        self.rtm_reg = nn.ModuleList(nn.Conv2d(feat_channels, 4, 1) for _ in self.strides)
        self.rtm_kernel = nn.ModuleList(nn.Conv2d(feat_channels, self.num_gen_params, 1) for _ in self.strides)
        self.mask_head = MaskFeatModule(in_channels, feat_channels, len(self.strides), num_prototypes)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor], list[Tensor], Tensor]:
        mask_feat = self.mask_head(features)
        cls_scores, bbox_preds, kernel_preds = [], [], []
        for level, (x, stride) in enumerate(zip(features, self.strides)):
            cls_feat, kernel_feat = x, x
            for layer in cast(nn.ModuleList, self.cls_convs[level]):
                cls_feat = layer(cls_feat)
            for layer in cast(nn.ModuleList, self.kernel_convs[level]):
                kernel_feat = layer(kernel_feat)
            cls_scores.append(self.rtm_cls[level](cls_feat))
            # MMDetection runs the identical reg tower again; its output equals cls_feat.
            bbox_preds.append(F.relu(self.rtm_reg[level](cls_feat)) * stride)
            kernel_preds.append(self.rtm_kernel[level](kernel_feat))
        return cls_scores, bbox_preds, kernel_preds, mask_feat


def point_priors(sizes: Sequence[tuple[int, int]], strides: Sequence[int], dtype: torch.dtype,
                 device: torch.device | None = None) -> list[Tensor]:
    """MMDetection's ``MlvlPointGenerator.grid_priors(with_stride=True)``, offset 0: per level
    (H*W, 4) rows ``(x, y, stride, stride)`` with x fastest, in ``dtype``."""
    priors = []
    for (height, width), stride in zip(sizes, strides):
        xs = (torch.arange(width, device=device) * stride).to(dtype)
        ys = (torch.arange(height, device=device) * stride).to(dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        s = torch.full((height * width,), stride, dtype=dtype, device=device)
        priors.append(torch.stack([xx.reshape(-1), yy.reshape(-1), s, s], dim=-1))
    return priors


def relative_coordinates(priors: Tensor, mask_feat: Tensor, stride: int) -> Tensor:
    """(D, 2, Hf*Wf): each prototype location's offset from each detection's prior, in units of
    8 prior strides, as MMDetection's ``_mask_predict_by_feat_single`` feeds its dynamic convs."""
    height, width = mask_feat.shape[-2:]
    locations = point_priors([(height, width)], [stride], mask_feat.dtype, mask_feat.device)[0][:, :2]
    return (priors[:, None, :2] - locations[None]).permute(0, 2, 1) / (priors[:, 2].reshape(-1, 1, 1) * 8)


def decode_distances(points: Tensor, distances: Tensor, max_shape: tuple[int, int]) -> Tensor:
    """``DistancePointBBoxCoder.decode``: (left, top, right, bottom) around each point, clamped to
    the resized image ``max_shape`` (h, w), not the padded one."""
    height, width = max_shape
    return torch.stack([
        (points[:, 0] - distances[:, 0]).clamp(min=0, max=width),
        (points[:, 1] - distances[:, 1]).clamp(min=0, max=height),
        (points[:, 0] + distances[:, 2]).clamp(min=0, max=width),
        (points[:, 1] + distances[:, 3]).clamp(min=0, max=height),
    ], dim=-1)


def _top_candidates(scores: Tensor, score_thr: float, nms_pre: int) -> tuple[Tensor, Tensor, Tensor]:
    """MMDetection's ``filter_scores_and_topk``: scores above the threshold, best ``nms_pre`` by
    an (unstable) descending sort; returns (scores, prior indices, labels)."""
    valid = scores > score_thr
    kept = scores[valid]
    index = torch.nonzero(valid)
    kept, order = kept.sort(descending=True)
    kept, index = kept[:nms_pre], index[order[:nms_pre]]
    return kept, index[:, 0], index[:, 1]


class RTMDetIns(Detector):
    """``backbone``: a :class:`CSPNeXt` (the zoo builds it); ``options``: the size's neck/head
    channels and CSP blocks (``zoo.RTMDetOptions``)."""

    def __init__(self, backbone: CSPNeXt, options: RTMDetOptions,
                 detection_config: RTMDetTestConfig = RTMDetTestConfig()) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = CSPNeXtPAFPN(backbone.out_channels, options.channels, options.num_csp_blocks)
        self.bbox_head = RTMDetInsSepBNHead(options.num_classes, options.channels, options.channels)
        self.detection_config = detection_config

    def rows_after_nms(self) -> tuple[int, ...]:
        return (self.detection_config.max_per_img,)

    # The stages are separate methods so benchmarks can time them one by one.
    def extract_features(self, images: Tensor) -> list[Tensor]:
        return self.neck(self.backbone(images))

    def head_outputs(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor], list[Tensor], Tensor]:
        return self.bbox_head(features)

    def select(self, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor], kernel_preds: Sequence[Tensor],
               img_shape: tuple[int, int], image_index: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Boxes, scores, labels, dynamic kernels and priors of one image's detections, by
        descending score (MMDetection's ``_predict_by_feat_single`` up to the mask step)."""
        cfg = self.detection_config
        sizes = [(int(c.shape[-2]), int(c.shape[-1])) for c in cls_scores]
        mlvl_priors = point_priors(sizes, self.bbox_head.strides, cls_scores[0].dtype, cls_scores[0].device)
        flat = [(c[image_index].permute(1, 2, 0).reshape(-1, c.shape[1]).sigmoid(),
                 b[image_index].permute(1, 2, 0).reshape(-1, 4),
                 k[image_index].permute(1, 2, 0).reshape(-1, k.shape[1]), p)
                for c, b, k, p in zip(cls_scores, bbox_preds, kernel_preds, mlvl_priors)]
        picked = [_top_candidates(s, cfg.score_thr, cfg.nms_pre) for s, _, _, _ in flat]
        if cfg.fixed_count and sum(int(p[0].numel()) for p in picked) < cfg.min_candidates:
            picked = _top_overall([s for s, _, _, _ in flat], cfg.min_candidates)
        scores = torch.cat([p[0] for p in picked])
        labels = torch.cat([p[2] for p in picked])
        distances = torch.cat([b[p[1]] for (_, b, _, _), p in zip(flat, picked)])
        kernels = torch.cat([k[p[1]] for (_, _, k, _), p in zip(flat, picked)])
        priors = torch.cat([pr[p[1]] for (_, _, _, pr), p in zip(flat, picked)])
        boxes = decode_distances(priors[:, :2], distances, img_shape)

        candidates = torch.arange(scores.numel(), device=scores.device)
        if cfg.min_bbox_size >= 0:
            wide = (boxes[:, 2] - boxes[:, 0] > cfg.min_bbox_size) & (boxes[:, 3] - boxes[:, 1] > cfg.min_bbox_size)
            if not (cfg.fixed_count and not bool(wide.any())):  # fixed count: never run out of candidates
                candidates = candidates[wide]
        keep = candidates[batched_nms(boxes[candidates], scores[candidates], labels[candidates], cfg.iou_threshold)]
        keep = keep[: cfg.max_per_img]
        if cfg.fixed_count and keep.numel() < cfg.max_per_img and candidates.numel() > 0:
            keep = fill_with_suppressed(scores, candidates, keep, cfg.max_per_img)
        return boxes[keep], scores[keep], labels[keep], kernels[keep], priors[keep]

    def mask_logits(self, mask_feat: Tensor, kernels: Tensor, priors: Tensor) -> Tensor:
        """(D, Hf, Wf) logits at the prototypes' resolution (stride 8), MMDetection's
        ``_mask_predict_by_feat_single``: each instance's three 1x1 convs (ReLU between) over the
        prototypes and its relative coordinates ``(prior - location) / (prior_stride * 8)``."""
        head = self.bbox_head
        num = priors.shape[0]
        height, width = mask_feat.shape[-2:]
        if num == 0:
            return mask_feat.new_empty((0, height, width))
        relative = relative_coordinates(priors, mask_feat, head.strides[0])
        x = torch.cat([relative.reshape(num, 2, height, width), mask_feat.expand(num, -1, -1, -1)], dim=1)
        x = x.reshape(1, -1, height, width)
        splits = torch.split_with_sizes(kernels, head.weight_nums + head.bias_nums, dim=1)
        layers = len(head.weight_nums)
        for i in range(layers):
            outputs = head.dyconv_channels if i < layers - 1 else 1
            weight = splits[i].reshape(num * outputs, -1, 1, 1)
            x = F.conv2d(x, weight, splits[layers + i].reshape(-1), groups=num)
            if i < layers - 1:
                x = F.relu(x)
        return x.reshape(num, height, width)

    # What runtimes and benchmarks ask of any detector family (see also MaskRCNN).
    STAGE_NAMES = ("backbone+fpn", "dense_head", "select", "mask_head")

    def staged_forward(self, images: Tensor, img_shapes: Sequence[tuple[int, int]], lap: Callable[[], None]) -> None:
        """``forward``'s work with ``lap()`` called after each of :data:`STAGE_NAMES` (timing)."""
        features = self.extract_features(images)
        lap()
        cls_scores, bbox_preds, kernel_preds, mask_feat = self.head_outputs(features)
        lap()
        selected = [self.select(cls_scores, bbox_preds, kernel_preds, shape, i) for i, shape in enumerate(img_shapes)]
        lap()
        for i, (_, _, _, kernels, priors) in enumerate(selected):
            self.mask_logits(mask_feat[i], kernels, priors)
        lap()

    def dense_stages(self) -> list[tuple[object, str]]:
        """(owner, attribute) of each dense stage: backbone + neck, and the head's convolutions
        (towers, predictions, prototypes); selection and the per-instance 1x1 convs stay float32."""
        return [(self, "extract_features"), (self.bbox_head, "forward")]

    def dense_modules(self) -> list[nn.Module]:
        """The modules whose weights a half-precision copy converts."""
        return [self.backbone, self.neck, self.bbox_head]

    def export_settings(self) -> dict[str, dict]:
        return {"detection_config": asdict(self.detection_config)}

    @torch.inference_mode()
    def forward(self, images: Tensor, img_shapes: Sequence[tuple[int, int]]) -> list[RawDetections]:
        """``images``: normalised, padded (B, 3, H, W); ``img_shapes``: each image's resized (h, w)."""
        cls_scores, bbox_preds, kernel_preds, mask_feat = self.head_outputs(self.extract_features(images))
        results = []
        for i, shape in enumerate(img_shapes):
            boxes, scores, labels, kernels, priors = self.select(cls_scores, bbox_preds, kernel_preds, shape, i)
            results.append(RawDetections(boxes, scores, labels, self.mask_logits(mask_feat[i], kernels, priors)))
        return results


def build_rtmdet_ins(spec: ModelSpec, fixed_count: bool = False) -> RTMDetIns:
    """A zoo row's RTMDet-Ins with PyTorch's default initialisation."""
    return RTMDetIns(cast(CSPNeXt, spec.build_backbone()), cast(RTMDetOptions, spec.heads),
                     RTMDetTestConfig(fixed_count=fixed_count)).eval()


def _calibrate(model, images: Tensor, shapes: list[tuple[int, int]]) -> None:
    from .random_weights import calibrate_rtmdet_

    calibrate_rtmdet_(model, images, shapes)


FAMILY_MODEL = FamilyModel(build_rtmdet_ins, _calibrate)  # the family entry's ``model``


def _top_overall(level_scores: Sequence[Tensor], count: int) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The best ``count`` (prior, class) scores over all levels, no threshold, split back by level."""
    flat = torch.cat([s.reshape(-1) for s in level_scores])
    best = flat.topk(min(count, flat.numel())).indices.sort().values
    picked, start = [], 0
    for s in level_scores:
        mine = best[(best >= start) & (best < start + s.numel())] - start
        picked.append((s.reshape(-1)[mine], mine // s.shape[1], mine % s.shape[1]))
        start += s.numel()
    return picked
