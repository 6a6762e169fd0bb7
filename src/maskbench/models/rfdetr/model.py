"""RF-DETR-Seg: backbone -> projector -> two-stage LW-DETR decoder -> class, box and mask heads.

``RFDETRSeg.forward`` returns the raw network outputs as a tuple of tensors (what an exported
graph returns); :meth:`RFDETRSeg.raw_outputs` wraps them in :class:`RawOutputs`. The top-k
selection, box scaling and mask upsampling are in :mod:`.postprocess`.

Only the last decoder layer's outputs are computed: rfdetr computes class, box and mask outputs
for every layer (training's auxiliary losses) and keeps the last one at inference. The mask head
still runs all its per-layer refinement blocks on the spatial features, since the last layer's
masks are read after all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ...zoo.rfdetr_sizes import RFDETRSegSize, get_size
from .backbone import Backbone
from .decoder import MLP, Transformer, reparam_boxes

DEPTHWISE_NORM_EPS = 1e-6


@dataclass(frozen=True)
class RawOutputs:
    """The network's outputs for a batch, before top-k selection and thresholds.

    ``logits`` (B, Q, 91): class logits per query, slot = COCO category id;
    ``boxes`` (B, Q, 4): cxcywh normalised to the (square, stretched) input;
    ``mask_logits`` (B, Q, R/4, R/4): mask logits at a quarter of the input resolution R.
    """

    logits: Tensor
    boxes: Tensor
    mask_logits: Tensor


class Table(nn.Module):
    """A learned (rows, dim) table read as a whole (``nn.Embedding``'s parameter name, without
    its lookup or its random initialisation, which on the meta device costs seconds)."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, dim))


class DepthwiseConvBlock(nn.Module):
    """Depthwise 3x3 -> LayerNorm -> pointwise linear -> GELU, residual (ConvNeXt without MLP)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=DEPTHWISE_NORM_EPS)
        self.pwconv1 = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        y = F.gelu(self.pwconv1(self.norm(self.dwconv(x).permute(0, 2, 3, 1))))
        return y.permute(0, 3, 1, 2) + x


class MLPBlock(nn.Module):
    """Pre-norm residual MLP (x4) on the query features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm_in = nn.LayerNorm(channels)
        self.layers = nn.ModuleList([nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels)])

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm_in(x)
        for layer in self.layers:
            y = layer(y)
        return y + x


class SegmentationHead(nn.Module):
    """Mask logits = <spatial features at stride 4, query embedding> + bias."""

    def __init__(self, channels: int, blocks: int, downsample_ratio: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DepthwiseConvBlock(channels) for _ in range(blocks))
        self.spatial_features_proj = nn.Conv2d(channels, channels, kernel_size=1)
        self.query_features_block = MLPBlock(channels)
        self.query_features_proj = nn.Linear(channels, channels)
        self.bias = nn.Parameter(torch.zeros(1))
        self.downsample_ratio = downsample_ratio

    def forward(self, features: Tensor, queries: Tensor, image_hw: tuple[int, int]) -> Tensor:
        size = (image_hw[0] // self.downsample_ratio, image_hw[1] // self.downsample_ratio)
        spatial = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        for block in self.blocks:
            spatial = block(spatial)
        spatial = self.spatial_features_proj(spatial)
        embedding = self.query_features_proj(self.query_features_block(queries))
        return torch.einsum("bchw,bnc->bnhw", spatial, embedding) + self.bias


class RFDETRSeg(nn.Module):
    """One RF-DETR-Seg size; parameter names equal rfdetr 1.11.2's (its ``_kp_active_mask``
    keypoint buffer, empty for seg models, aside)."""

    def __init__(self, size: RFDETRSegSize | str) -> None:
        super().__init__()
        self.size = get_size(size) if isinstance(size, str) else size
        hidden = self.size.hidden_dim
        queries = self.size.num_queries * self.size.group_detr
        self.transformer = Transformer(self.size)
        self.class_embed = nn.Linear(hidden, self.size.num_classes)
        self.bbox_embed = MLP(hidden, hidden, 4, 3)
        self.segmentation_head = SegmentationHead(hidden, self.size.dec_layers, self.size.mask_downsample_ratio)
        self.refpoint_embed = Table(queries, 4)
        self.query_feat = Table(queries, hidden)
        self.backbone = nn.ModuleList([Backbone(self.size)])

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.network(images)

    def network(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised (B, 3, R, R) images -> (logits, cxcywh boxes, mask logits); see RawOutputs.
        (``forward`` too, here; maskbench's detector subclass gives ``forward`` its detections.)"""
        features = self.backbone[0](images)
        queries, reference = self.transformer(features, self.query_feat.weight, self.refpoint_embed.weight)
        boxes = reparam_boxes(self.bbox_embed(queries), reference)
        logits = self.class_embed(queries)
        mask_logits = self.segmentation_head(features, queries, (images.shape[2], images.shape[3]))
        return logits, boxes, mask_logits

    @torch.no_grad()
    def raw_outputs(self, images: Tensor) -> RawOutputs:
        return RawOutputs(*self.network(images))


def random_model(size: RFDETRSegSize | str, seed: int, dtype: torch.dtype = torch.float32) -> RFDETRSeg:
    """The size's network with the deterministic random weights of :mod:`.random_weights`
    (generated in float64, then cast), in eval mode."""
    from .random_weights import random_state_dict

    with torch.device("meta"):
        model = RFDETRSeg(size)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = random_state_dict(shapes, seed)
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, assign=True)
    return model.eval()
