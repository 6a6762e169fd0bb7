import pytest

from maskbench.data.coco_classes import COCO_CATEGORY_IDS, COCO_CLASSES
from maskbench.evaluation import CategoryMap, CategoryMismatchError
from maskbench.evaluation.categories import to_dataset_ids


def test_round_trip_on_the_official_categories(tiny_dataset):
    category_map = CategoryMap.from_categories(tiny_dataset["categories"])
    assert category_map.is_official_coco()
    for label in range(80):
        dataset_id = category_map.dataset_id(label)
        assert dataset_id == COCO_CATEGORY_IDS[label]
        assert category_map.label(dataset_id) == label
        assert category_map.name_by_dataset_id[dataset_id] == COCO_CLASSES[label]


def test_a_renumbered_subset_maps_by_name():
    """A robot's dataset: only two COCO classes, numbered its own way, names spelt loosely."""
    category_map = CategoryMap.from_categories([{"id": 1, "name": "Traffic_Light"}, {"id": 2, "name": "person"}])
    assert category_map.dataset_id(COCO_CLASSES.index("traffic light")) == 1
    assert category_map.dataset_id(COCO_CLASSES.index("person")) == 2
    assert category_map.dataset_id(COCO_CLASSES.index("car")) is None
    assert not category_map.is_official_coco()
    entries = [{"image_id": 5, "category_id": 1, "category_name": "person", "score": 0.9},  # COCO id 1 = person
               {"image_id": 5, "category_id": 3, "category_name": "car", "score": 0.8},  # not in the dataset
               {"image_id": 5, "category_id": 1, "score": 0.7}]  # another tool: already the dataset's id
    mapped, dropped = to_dataset_ids(entries, category_map)
    assert [entry["category_id"] for entry in mapped] == [2, 1]
    assert dropped == 1
    assert entries[0]["category_id"] == 1  # the caller's entries are left as they were


def test_unknown_category_name_is_a_clear_error():
    with pytest.raises(CategoryMismatchError, match=r"'forklift'.*not among the 80 COCO classes"):
        CategoryMap.from_categories([{"id": 1, "name": "person"}, {"id": 2, "name": "forklift"}])


def test_duplicate_and_empty_categories_are_errors():
    with pytest.raises(CategoryMismatchError, match="appears twice"):
        CategoryMap.from_categories([{"id": 1, "name": "person"}, {"id": 7, "name": "Person"}])
    with pytest.raises(CategoryMismatchError, match="no categories"):
        CategoryMap.from_categories([])
