"""COCO's 80 classes in MMDetection's order, their official category ids, and palette.

Models predict contiguous labels 0..79; COCO files and evaluation use the sparse official
category ids 1..90 (ten ids are unused). Keeping both tables here, in one order, is what
makes the two conversions exact.
"""

from __future__ import annotations

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife",
    "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# The official ids of the classes above, same order (12, 26, 29, 30, 45, 66, 68, 69, 71, 83
# were defined in the COCO paper but never annotated).
COCO_CATEGORY_IDS: tuple[int, ...] = (
    *range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
    *range(72, 83), *range(84, 91),
)  # fmt: skip

# RGB colours, one per class, as MMDetection's CocoDataset draws them, so our overlays
# look like MMDetection's and a reader can compare the two at a glance.
COCO_PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228), (0, 60, 100),
    (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30), (100, 170, 30), (220, 220, 0),
    (175, 116, 175), (250, 0, 30), (165, 42, 42), (255, 77, 255), (0, 226, 252),
    (182, 182, 255), (0, 82, 0), (120, 166, 157), (110, 76, 0), (174, 57, 255),
    (199, 100, 0), (72, 0, 118), (255, 179, 240), (0, 125, 92), (209, 0, 151),
    (188, 208, 182), (0, 220, 176), (255, 99, 164), (92, 0, 73), (133, 129, 255),
    (78, 180, 255), (0, 228, 0), (174, 255, 243), (45, 89, 255), (134, 134, 103),
    (145, 148, 174), (255, 208, 186), (197, 226, 255), (171, 134, 1), (109, 63, 54),
    (207, 138, 255), (151, 0, 95), (9, 80, 61), (84, 105, 51), (74, 65, 105),
    (166, 196, 102), (208, 195, 210), (255, 109, 65), (0, 143, 149), (179, 0, 194),
    (209, 99, 106), (5, 121, 0), (227, 255, 205), (147, 186, 208), (153, 69, 1),
    (3, 95, 161), (163, 255, 0), (119, 0, 170), (0, 182, 199), (0, 165, 120),
    (183, 130, 88), (95, 32, 0), (130, 114, 135), (110, 129, 133), (166, 74, 118),
    (219, 142, 185), (79, 210, 114), (178, 90, 62), (65, 70, 15), (127, 167, 115),
    (59, 105, 106), (142, 108, 45), (196, 172, 0), (95, 54, 80), (128, 76, 255),
    (201, 57, 1), (246, 0, 122), (191, 162, 208),
)  # fmt: skip

_LABEL_BY_CATEGORY_ID = {cid: label for label, cid in enumerate(COCO_CATEGORY_IDS)}


def label_to_category_id(label: int) -> int:
    """COCO category id of a contiguous label 0..79 (what COCO files need)."""
    label = int(label)
    if not 0 <= label < len(COCO_CATEGORY_IDS):
        raise ValueError(f"label {label} is not a COCO class; labels run 0..{len(COCO_CATEGORY_IDS) - 1}")
    return COCO_CATEGORY_IDS[label]


def category_id_to_label(cid: int) -> int:
    """Contiguous label 0..79 of a COCO category id (what models and palettes index by)."""
    try:
        return _LABEL_BY_CATEGORY_ID[int(cid)]
    except KeyError:
        raise ValueError(
            f"COCO category id {cid} is not one of the 80 annotated classes; use ids from COCO_CATEGORY_IDS"
        ) from None
