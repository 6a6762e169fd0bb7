"""The six RF-DETR-Seg sizes of ``rfdetr`` 1.11.2 as plain data, for the zoo.

Architecture numbers are those of rfdetr's ``RFDETRSeg*Config`` classes (1.11.2); published
accuracy is the README's COCO val2017 instance-segmentation table (mask AP50:95 and AP50,
pycocotools, full 5,000 images; the README publishes no box AP for the seg models, hence None;
its parameter counts are millions of "deployment (fused)" parameters). ``parameters`` is the exact
count of the built network, all 13 training query groups included (they are in the checkpoint;
inference uses the first), checked against rfdetr's built model by a test.

Checkpoint URLs and MD5 hashes are rfdetr's ``ModelWeights`` assets (1.11.2). The checkpoints
hold the weights under ``"model"`` beside the training arguments (an ``argparse.Namespace``).
Training recipe: fine-tuned on COCO from Objects365-pretrained weights (the ``-ft`` files);
rfdetr does not publish the schedule in 1.11.2's package, so ``recipe`` says only that.

Class indexing: 91 logit slots indexed by COCO's sparse category ids (slot 0 and the ten ids
COCO never annotated are unused slots); :func:`maskbench.models.rfdetr.postprocess.slot_to_label`
maps them to maskbench's contiguous labels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RFDETRSegSize:
    name: str  # rfdetr's model size name (``RFDETR.size``)
    alias: str  # maskbench's short name
    rfdetr_class: str  # the rfdetr class that builds it
    resolution: int  # square input side, pixels
    patch_size: int
    num_windows: int  # windowed attention: num_windows x num_windows windows per image
    dec_layers: int
    num_queries: int
    num_select: int  # detections rfdetr's PostProcess keeps (top-k of queries x classes)
    published_mask_ap: float  # COCO val2017 mask AP50:95
    published_mask_ap50: float
    published_box_ap: float | None
    published_params_m: float  # README, millions, "deployment (fused)"
    parameters: int  # the built network (all query groups), exact
    checkpoint_url: str
    checkpoint_md5: str | None
    # shared by all six sizes
    encoder: str = "dinov2_windowed_small"  # ViT-S/12 layers/384 wide/6 heads, no register tokens
    vit_width: int = 384
    vit_layers: int = 12
    vit_heads: int = 6
    out_feature_indexes: tuple[int, ...] = (3, 6, 9, 12)
    hidden_dim: int = 256
    sa_nheads: int = 8
    ca_nheads: int = 16
    dec_n_points: int = 2
    dim_feedforward: int = 2048
    group_detr: int = 13
    num_classes: int = 91  # logit slots: COCO's max category id + 1
    mask_downsample_ratio: int = 4
    licence: str = "Apache-2.0"
    recipe: str = "COCO fine-tune (-ft) of Objects365 pretraining; schedule not published in rfdetr 1.11.2"

    @property
    def window_block_indexes(self) -> tuple[int, ...]:
        """ViT blocks with windowed attention: rfdetr's legacy rule (all blocks up to the last
        output index, minus the output indexes taken as block numbers); the rest attend globally."""
        return tuple(sorted(set(range(self.out_feature_indexes[-1] + 1)) - set(self.out_feature_indexes)))

    @property
    def mask_size(self) -> int:
        return self.resolution // self.mask_downsample_ratio


_URL = "https://storage.googleapis.com/rfdetr/rf-detr-seg-{}-ft.pth"

SIZES: tuple[RFDETRSegSize, ...] = (
    RFDETRSegSize("rfdetr-seg-nano", "rfdetr-seg-n", "RFDETRSegNano", 312, 12, 1, 4, 100, 100,
                  40.3, 63.0, None, 33.6, 33_577_475, _URL.format("n"), "9995497791d0ff1664a1d9ddee9cfd20"),
    RFDETRSegSize("rfdetr-seg-small", "rfdetr-seg-s", "RFDETRSegSmall", 384, 12, 2, 4, 100, 100,
                  43.1, 66.2, None, 33.7, 33_711_107, _URL.format("s"), "0a2a3006381d0c42853907e700eadd08"),
    RFDETRSegSize("rfdetr-seg-medium", "rfdetr-seg-m", "RFDETRSegMedium", 432, 12, 2, 5, 200, 200,
                  45.3, 68.4, None, 35.7, 35_694_259, _URL.format("m"), "a49af1562c3719227ad43d0ca53b4c7a"),
    RFDETRSegSize("rfdetr-seg-large", "rfdetr-seg-l", "RFDETRSegLarge", 504, 12, 2, 5, 200, 200,
                  47.1, 70.5, None, 36.2, 35_873_971, _URL.format("l"), "275f7b094909544ed2841c94a677d07e"),
    RFDETRSegSize("rfdetr-seg-xlarge", "rfdetr-seg-xl", "RFDETRSegXLarge", 624, 12, 2, 6, 300, 300,
                  48.8, 72.2, None, 38.1, 38_113_635, _URL.format("xl"), "3693b35d0eea86ebb3e0444f4a611fba"),
    RFDETRSegSize("rfdetr-seg-2xlarge", "rfdetr-seg-2xl", "RFDETRSeg2XLarge", 768, 12, 2, 6, 300, 300,
                  49.9, 73.1, None, 38.6, 38_648_163, _URL.format("2xl"), "040bc3412af840fa8a47e0ff69b552ba"),
)

_BY_NAME = {s.alias: s for s in SIZES} | {s.name: s for s in SIZES}


def get_size(name: str) -> RFDETRSegSize:
    """The size by alias (``rfdetr-seg-m``) or rfdetr name (``rfdetr-seg-medium``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(s.alias for s in SIZES)
        raise ValueError(f"unknown RF-DETR-Seg size '{name}'; choose one of {known}") from None
