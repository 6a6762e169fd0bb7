"""LW-DETR's transformer as RF-DETR-Seg runs it at inference: two-stage query selection from
the projected features, then a decoder of self-attention, multi-scale deformable
cross-attention and a feed-forward block per layer.

Deformable attention is written with ``grid_sample`` (bilinear, zero padding), so the graph
exports to standard ONNX. The reference boxes are fixed for all layers ("lite" refinement with
box reparameterisation): each query samples ``n_points`` points per head around its box centre,
offsets scaled by half the box size over ``n_points``. Only the first of the 13 training query
groups runs; the others are kept so that rfdetr's checkpoints load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ...zoo.rfdetr_sizes import RFDETRSegSize

PROPOSAL_SIZE = 0.05  # initial proposal box side (fraction of the image) at the first level
PROPOSAL_VALID = (0.01, 0.99)  # proposals with a coordinate outside are masked out
OFFSET_SCALE = 0.5  # sampling offsets are in units of (box size / n_points) * this


class MLP(nn.Module):
    """Linear layers with ReLU between (rfdetr's ``MLP``)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def reparam_boxes(delta: Tensor, reference: Tensor) -> Tensor:
    """cxcywh boxes from a delta relative to reference boxes: centre moves by delta * size,
    size scales by exp(delta)."""
    centre = delta[..., :2] * reference[..., 2:] + reference[..., :2]
    size = delta[..., 2:].exp() * reference[..., 2:]
    return torch.concat([centre, size], dim=-1)


def sine_embedding(boxes: Tensor, dim: int) -> Tensor:
    """(B, Q, 4) cxcywh -> (B, Q, 4 * dim): sin/cos of each coordinate at ``dim`` frequencies,
    ordered y, x, w, h."""
    freqs = torch.arange(dim, dtype=boxes.dtype, device=boxes.device)
    freqs = 10000 ** (2 * (freqs // 2) / dim)

    def embed(coordinate: Tensor) -> Tensor:
        angles = (coordinate * (2 * math.pi))[:, :, None] / freqs
        return torch.stack((angles[:, :, 0::2].sin(), angles[:, :, 1::2].cos()), dim=3).flatten(2)

    return torch.cat([embed(boxes[:, :, i]) for i in (1, 0, 2, 3)], dim=2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention over one or more flattened levels, with box references."""

    def __init__(self, d_model: int, n_levels: int, n_heads: int, n_points: int) -> None:
        super().__init__()
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

    def forward(self, query: Tensor, boxes: Tensor, memory: Tensor, level_shapes: list[tuple[int, int]]) -> Tensor:
        """query (B, Q, C); boxes (B, Q, 4) cxcywh in [0, 1]; memory (B, sum HW, C)."""
        batch, queries, channels = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(memory)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points).softmax(-1)
        reference = boxes[:, :, None, None, None, :]
        locations = reference[..., :2] + offsets / points * reference[..., 2:] * OFFSET_SCALE
        grids = 2 * locations - 1  # grid_sample's [-1, 1]
        value = value.transpose(1, 2).contiguous().view(batch, heads, channels // heads, -1)
        starts = [0]
        for height, width in level_shapes:
            starts.append(starts[-1] + height * width)
        sampled = []
        for level, (height, width) in enumerate(level_shapes):
            level_value = value[..., starts[level]:starts[level + 1]]
            level_value = level_value.reshape(batch * heads, channels // heads, height, width)
            level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (B*heads, Q, points, 2)
            sampled.append(F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros",
                                         align_corners=False))
        samples = sampled[0] if levels == 1 else torch.stack(sampled, dim=-2).flatten(-2)
        weights = weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
        output = (samples * weights).sum(-1).view(batch, channels, queries).transpose(1, 2).contiguous()
        return self.output_proj(output)


class DecoderLayer(nn.Module):
    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        d_model = size.hidden_dim
        self.self_attn = nn.MultiheadAttention(d_model, size.sa_nheads, dropout=0.0, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformAttn(d_model, 1, size.ca_nheads, size.dec_n_points)
        self.linear1 = nn.Linear(d_model, size.dim_feedforward)
        self.linear2 = nn.Linear(size.dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, tgt: Tensor, query_pos: Tensor, boxes: Tensor, memory: Tensor,
                level_shapes: list[tuple[int, int]]) -> Tensor:
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])
        tgt = self.norm2(tgt + self.cross_attn(tgt + query_pos, boxes, memory, level_shapes))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Decoder(nn.Module):
    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(size) for _ in range(size.dec_layers))
        self.norm = nn.LayerNorm(size.hidden_dim)
        self.ref_point_head = MLP(2 * size.hidden_dim, size.hidden_dim, size.hidden_dim, 2)
        self.half_dim = size.hidden_dim // 2

    def forward(self, tgt: Tensor, boxes: Tensor, memory: Tensor, level_shapes: list[tuple[int, int]]) -> Tensor:
        """The last layer's normalised query features (B, Q, C)."""
        query_pos = self.ref_point_head(sine_embedding(boxes, self.half_dim))
        for layer in self.layers:
            tgt = layer(tgt, query_pos, boxes, memory, level_shapes)
        return self.norm(tgt)


def encoder_proposals(memory: Tensor, level_shapes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """Per memory position a proposal box (its cell centre, side 0.05 * 2^level) and the memory
    with positions whose proposal leaves (0.01, 0.99) zeroed. Computed in float32 as rfdetr does,
    then cast to the memory's dtype."""
    proposals = []
    for level, (height, width) in enumerate(level_shapes):
        grid_y, grid_x = torch.meshgrid(torch.arange(height, dtype=torch.float32, device=memory.device),
                                        torch.arange(width, dtype=torch.float32, device=memory.device), indexing="ij")
        grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
        scale = torch.tensor([width, height], dtype=torch.float32, device=memory.device)
        centres = (grid.unsqueeze(0) + 0.5) / scale
        sizes = torch.ones_like(centres) * PROPOSAL_SIZE * (2.0**level)
        proposals.append(torch.cat((centres, sizes), -1).reshape(1, -1, 4))
    # expand_as, not expand(batch, ...): a traced graph then keeps its shapes known (FLOP count)
    boxes = torch.cat(proposals, 1).expand_as(memory[..., :4])
    low, high = PROPOSAL_VALID
    valid = ((boxes > low) & (boxes < high)).all(-1, keepdim=True)
    return memory.masked_fill(~valid, 0.0), boxes.masked_fill(~valid, 0.0).to(memory.dtype)


def _rows(top: Tensor, rows: Tensor) -> Tensor:
    """``top`` (B, K) as a gather index of whole rows of ``rows`` (B, N, W): broadcast by an
    addition, not ``expand(-1, -1, W)``, whose traced form (a ``Where`` over the sizes) leaves
    ONNX shape inference, and so the FLOP count, without the decoder's shapes."""
    return top.unsqueeze(-1) + torch.zeros_like(rows[:, :1, :], dtype=top.dtype)


class Transformer(nn.Module):
    """Two-stage query selection + decoder; returns (query features, reference boxes)."""

    def __init__(self, size: RFDETRSegSize) -> None:
        super().__init__()
        d_model, groups = size.hidden_dim, size.group_detr
        self.decoder = Decoder(size)
        self.enc_output = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(groups))
        self.enc_output_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(groups))
        self.enc_out_bbox_embed = nn.ModuleList(MLP(d_model, d_model, 4, 3) for _ in range(groups))
        self.enc_out_class_embed = nn.ModuleList(nn.Linear(d_model, size.num_classes) for _ in range(groups))
        self.num_queries = size.num_queries

    def forward(self, features: Tensor, query_feat: Tensor, refpoint_embed: Tensor) -> tuple[Tensor, Tensor]:
        """features (B, C, H, W) -> decoder output (B, Q, C) and reference boxes (B, Q, 4) cxcywh."""
        level_shapes = [(features.shape[2], features.shape[3])]
        memory = features.flatten(2).transpose(1, 2)
        masked_memory, proposals = encoder_proposals(memory, level_shapes)
        # two-stage selection: the top positions by their best class logit become the queries' boxes
        prenorm = self.enc_output[0](masked_memory)
        class_logits = self.enc_out_class_embed[0](self.enc_output_norm[0](prenorm))
        count = min(self.num_queries, class_logits.shape[-2])
        top = torch.topk(class_logits.max(-1)[0], count, dim=1)[1]
        gathered = torch.gather(prenorm, 1, _rows(top, prenorm))
        selected = self.enc_output_norm[0](gathered)
        selected_proposals = torch.gather(proposals, 1, _rows(top, proposals))
        two_stage_boxes = reparam_boxes(self.enc_out_bbox_embed[0](selected), selected_proposals)
        # learned queries: features as they are, boxes as deltas on the two-stage boxes
        tgt = query_feat[:count].unsqueeze(0).expand_as(gathered).contiguous()
        learned = refpoint_embed[:count].unsqueeze(0).expand_as(selected_proposals)
        centre = learned[..., :2] * two_stage_boxes[..., 2:]
        centre = centre + two_stage_boxes[..., :2]
        boxes = torch.concat([centre, learned[..., 2:].exp() * two_stage_boxes[..., 2:]], dim=-1)
        return self.decoder(tgt, boxes, memory, level_shapes), boxes
