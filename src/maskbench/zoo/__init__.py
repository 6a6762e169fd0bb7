"""The model zoo: a typed table of every model (:mod:`.table`), the family registry
(:mod:`.families`), their types (:mod:`.specs`) and the generated views (:mod:`.views`).

Plain data: importing the zoo imports neither torch nor any model code. Families from outside
maskbench (``MASKBENCH_FAMILIES``, entry points) are loaded by ``maskbench/__init__.py``, which
runs before any maskbench module, so every process, a benchmark worker's too, sees the same zoo.
"""

from .families import (
    MASK_RCNN,
    RFDETR_SEG,
    RTMDET_INS,
    families,
    get_family,
    locate,
    register_family,
    stage_order,
)
from .specs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MASK_RCNN_INPUT,
    RESNEST_INPUT,
    RTMDET_INPUT,
    FamilyEntry,
    HeadOptions,
    InputFormat,
    ModelSpec,
    RTMDetOptions,
    WeightsMeta,
)
from .table import MODEL_SETS, MODELS, STUDY_MODELS, get_spec, register_model

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "MASK_RCNN", "MASK_RCNN_INPUT", "MODELS", "MODEL_SETS", "RESNEST_INPUT",
    "RFDETR_SEG",
    "RTMDET_INPUT", "RTMDET_INS", "STUDY_MODELS", "FamilyEntry", "HeadOptions", "InputFormat", "ModelSpec",
    "RTMDetOptions", "WeightsMeta", "families", "get_family", "get_spec", "locate", "register_family",
    "register_model", "stage_order",
]

