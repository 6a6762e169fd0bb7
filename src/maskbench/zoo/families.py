"""The family registry: one :class:`~.specs.FamilyEntry` per model family, resolved by name.

As ``runtimes/registry.py`` does for runtimes, an entry is plain data naming its code by
``"module:attribute"`` path, so nothing outside a family's own modules branches on the family:
the factory builds through ``entry.model``, the export traces ``entry.graph``, post-processing
runs ``entry.decode``, profiling assigns stages with ``entry.stage_rule``, check-conversion taps
``entry.feature_rule``'s tensors, records and reports read ``stage_names``.

Families from outside maskbench: a module that calls :func:`register_family` (and
:func:`maskbench.zoo.register_model` for its rows), named in ``MASKBENCH_FAMILIES``
(comma-separated modules, imported when the zoo is first imported, in every process:
benchmark workers inherit the variable) or in the ``maskbench.families`` entry-point group.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from importlib.metadata import entry_points

from ..utils.errors import UnknownModelError
from .rfdetr_sizes import RFDETRSegSize
from .specs import FamilyEntry, HeadOptions, RTMDetOptions

PLUGINS_VARIABLE = "MASKBENCH_FAMILIES"
ENTRY_POINT_GROUP = "maskbench.families"

_FAMILIES: dict[str, FamilyEntry] = {}


def register_family(entry: FamilyEntry) -> FamilyEntry:
    """Add a family (its name must be new); returns the entry, for ``X = register_family(...)``."""
    if entry.name in _FAMILIES and _FAMILIES[entry.name] != entry:
        raise ValueError(f"a family named {entry.name!r} is registered already")
    _FAMILIES[entry.name] = entry
    return entry


def get_family(name: str) -> FamilyEntry:
    """The entry of a family name (as records and bundle manifests store it)."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UnknownModelError(f"unknown model family '{name}' (known: {', '.join(_FAMILIES)}); a family from "
                                f"outside maskbench is loaded by naming its module in {PLUGINS_VARIABLE}") from None


def families() -> tuple[FamilyEntry, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())


def locate(path: str):
    """The object a ``"package.module:attribute"`` path names, its module imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def stage_order(entries: Iterable[FamilyEntry] | None = None) -> tuple[str, ...]:
    """The stages of ``entries`` (default: every family) merged into one order that keeps each
    family's own order (a new stage goes just before the next known stage after it in its
    family; where two families disagree, the first one's order wins): the report's columns."""
    order: list[str] = []
    for entry in (_FAMILIES.values() if entries is None else entries):
        for i, stage in enumerate(entry.stage_names):
            if stage in order:
                continue
            later = [s for s in entry.stage_names[i + 1:] if s in order]
            order.insert(order.index(later[0]) if later else len(order), stage)
    return tuple(order)


def load_plugins() -> None:
    """Import the family modules named in ``MASKBENCH_FAMILIES`` and the entry points."""
    names = [name.strip() for name in os.environ.get(PLUGINS_VARIABLE, "").split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UnknownModelError(f"{PLUGINS_VARIABLE} names module '{name}', which does not import ({err}); "
                                    f"fix or unset {PLUGINS_VARIABLE}") from None
    for point in entry_points(group=ENTRY_POINT_GROUP):
        point.load()


MASK_RCNN = register_family(FamilyEntry(
    name="mask-rcnn", display_name="Mask R-CNN", architecture="{backbone} + FPN, Mask R-CNN (two-stage)",
    options_type=HeadOptions, masks_output="mask_probs",
    masks_doc="(D,28,28) probabilities of the label's mask, relative to its box",
    stage_names=("backbone+fpn", "rpn", "box_head", "mask_head"),
    feature_levels=("P2", "P3", "P4", "P5", "P6"),
    model="maskbench.models.mask_rcnn.model:FAMILY_MODEL",
    graph="maskbench.export.graph:DetectorGraph",
    decode="maskbench.pipeline.postprocess:paste_box_masks",
    stage_rule="maskbench.benchmark.profiling.node_stages:two_stage_stages",
    feature_rule="maskbench.runtimes.feature_names:fpn_tensor_names",
    static_batch=True,
))

RTMDET_INS = register_family(FamilyEntry(
    name="rtmdet-ins", display_name="RTMDet-Ins",
    architecture="{backbone} + CSPNeXtPAFPN, RTMDet-Ins (one-stage, dynamic mask kernels)",
    options_type=RTMDetOptions, masks_output="mask_logits",
    masks_doc="(D,H/8,W/8) mask logits at stride 8 of the padded input",
    stage_names=("backbone+fpn", "dense_head", "select", "mask_head"),
    feature_levels=("P3", "P4", "P5"),
    model="maskbench.models.rtmdet.model:FAMILY_MODEL",
    graph="maskbench.export.graph_rtmdet:RTMDetGraph",
    decode="maskbench.pipeline.postprocess:resize_stride_masks",
    stage_rule="maskbench.benchmark.profiling.node_stages:one_stage_stages",
    feature_rule="maskbench.runtimes.feature_names:pafpn_tensor_names",
    static_batch=True,
))

RFDETR_SEG = register_family(FamilyEntry(
    name="rfdetr-seg", display_name="RF-DETR-Seg",
    architecture="{backbone} + projector, LW-DETR decoder (deformable attention, two-stage queries), "
                 "query masks at stride 4, top-k without NMS",
    options_type=RFDETRSegSize, masks_output="mask_logits",
    masks_doc="(D,R/4,R/4) mask logits over the square input, one per selected query",
    stage_names=("backbone", "projector", "decoder", "mask_head", "select"),
    feature_levels=("P4",),
    model="maskbench.models.rfdetr.detector:FAMILY_MODEL",
    graph="maskbench.export.graph_rfdetr:RFDETRGraph",
    decode="maskbench.pipeline.postprocess:resize_query_masks",
    stage_rule="maskbench.benchmark.profiling.node_stages:query_stages",
    feature_rule="maskbench.runtimes.feature_names:projector_tensor_names",
    static_batch=True,
))
