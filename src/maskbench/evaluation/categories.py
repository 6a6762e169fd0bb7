"""Map the model's 80 contiguous labels to the category ids of the dataset being scored.

The models predict labels 0..79 in MMDetection's order; ``maskbench predict`` writes COCO's
official sparse ids (1..90) with each entry's ``category_name``. A user's annotation file may
number its categories otherwise (1..80, or only the few classes a robot cares about), so the
mapping is built from the annotation file's own ``categories`` by *name*, never by assuming
that its ids are COCO's. For the official COCO files the mapping is the identity on ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from maskbench.data.coco_classes import COCO_CATEGORY_IDS, COCO_CLASSES
from maskbench.utils.errors import MaskbenchError


class CategoryMismatchError(MaskbenchError):
    """An annotation file whose categories are not (a subset of) COCO's 80 classes."""


def normalise_name(name: str) -> str:
    """Compare names ignoring case, spaces and underscores ("Traffic_Light" = "traffic light")."""
    return " ".join(str(name).replace("_", " ").lower().split())


_LABEL_BY_NAME = {normalise_name(name): label for label, name in enumerate(COCO_CLASSES)}


@dataclass(frozen=True)
class CategoryMap:
    """Contiguous label (0..79) <-> the dataset's category id, for the classes the dataset has.

    ``dataset_id_by_label`` holds only the classes the annotation file lists; detections of the
    other classes have no id in the dataset and are dropped before scoring (pycocotools would
    ignore them anyway, as it scores only the ground truth's categories).
    """

    dataset_id_by_label: Mapping[int, int]
    name_by_dataset_id: Mapping[int, str]

    @classmethod
    def from_categories(cls, categories: Iterable[Mapping]) -> CategoryMap:
        """Build the map from an annotation file's ``categories`` list (dicts with id, name).

        Raises :class:`CategoryMismatchError` (one line) when a name is not one of the 80 COCO
        classes, a class appears twice, or the list is empty: scoring such a file against a
        COCO-trained model would silently report zeros.
        """
        categories = list(categories)
        if not categories:
            raise CategoryMismatchError("the annotation file lists no categories; it needs COCO's 'categories' list")
        unknown = [str(cat.get("name")) for cat in categories
                   if normalise_name(cat.get("name", "")) not in _LABEL_BY_NAME]
        if unknown:
            shown = ", ".join(repr(name) for name in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise CategoryMismatchError(
                f"{len(unknown)} categor{'y' if len(unknown) == 1 else 'ies'} of the annotation file "
                f"({shown}) {'is' if len(unknown) == 1 else 'are'} not among the 80 COCO classes the zoo models "
                "predict; rename them to COCO names (see maskbench.data.coco_classes.COCO_CLASSES) or remove them"
            )
        dataset_id_by_label: dict[int, int] = {}
        for cat in categories:
            label = _LABEL_BY_NAME[normalise_name(cat["name"])]
            if label in dataset_id_by_label:
                raise CategoryMismatchError(
                    f"class {COCO_CLASSES[label]!r} appears twice in the annotation file's categories "
                    f"(ids {dataset_id_by_label[label]} and {cat['id']}); keep one"
                )
            dataset_id_by_label[label] = int(cat["id"])
        names = {dataset_id: COCO_CLASSES[label] for label, dataset_id in dataset_id_by_label.items()}
        return cls(dataset_id_by_label, names)

    def dataset_id(self, label: int) -> int | None:
        """The dataset's id of contiguous ``label``; None when the dataset lacks that class."""
        return self.dataset_id_by_label.get(int(label))

    def label(self, dataset_id: int) -> int:
        """The contiguous label of one of the dataset's category ids."""
        for label, known in self.dataset_id_by_label.items():
            if known == int(dataset_id):
                return label
        raise CategoryMismatchError(f"category id {dataset_id} is not in the annotation file's categories")

    def is_official_coco(self) -> bool:
        """True when every class the dataset lists has COCO's official id (the identity map)."""
        return all(COCO_CATEGORY_IDS[label] == cid for label, cid in self.dataset_id_by_label.items())


def to_dataset_ids(entries: Iterable[Mapping], category_map: CategoryMap) -> tuple[list[dict], int]:
    """Copies of COCO result ``entries`` with ``category_id`` in the dataset's numbering (see
    :func:`dataset_category_id`), and how many entries were dropped because the dataset does not
    have their class."""
    mapped, dropped = [], 0
    for entry in entries:
        if entry.get("category_name") is None:  # another tool's: kept as it is
            mapped.append(dict(entry))
            continue
        dataset_id = dataset_category_id(entry, category_map)
        if dataset_id is None:
            dropped += 1
            continue
        mapped.append({**entry, "category_id": dataset_id})
    return mapped, dropped


def dataset_category_id(entry: Mapping, category_map: CategoryMap):
    """The dataset's category id of one COCO result ``entry``; None when the dataset lacks its class.

    An entry carrying a ``category_name`` (as ``maskbench predict`` and ``evaluate`` write them)
    is mapped by that name, whatever id it holds (COCO's official one); an entry from another
    tool, without a name, is taken to use the annotation file's ids already (its ``category_id``
    as it is).
    """
    name = entry.get("category_name")
    if name is None:
        return entry.get("category_id")
    label = _LABEL_BY_NAME.get(normalise_name(name))
    if label is None:
        raise CategoryMismatchError(
            f"a result names category {name!r}, which is not a COCO class; drop 'category_name' from "
            "the results to score their category_id as the annotation file's ids"
        )
    return category_map.dataset_id(label)
