"""The Pareto front keeps exactly the records nothing beats on both axes, and the plot shows
every ok record with its label."""

from __future__ import annotations

from synthetic_bench import make_record

from maskbench.report.pareto import FRONT_COLOUR, metric_value, pareto_figure, pareto_front, point_label


def _point(alias: str, runtime: str, mean_ms: float, mask_ap: float, **fields):
    return make_record(alias, runtime, mean_ms=mean_ms, zoo_mask_ap=mask_ap, **fields)


def hand_made():
    """fast (100, 30), mid (200, 35), best (400, 40) form the front; slow_same (300, 35) is
    beaten by mid (faster, same AP), worse (150, 28) by fast (faster, better)."""
    return {
        "fast": _point("r50", "onnxruntime", 100.0, 30.0),
        "worse": _point("r101", "onnxruntime", 150.0, 28.0),
        "mid": _point("x101", "onnxruntime", 200.0, 35.0),
        "slow_same": _point("x101", "openvino", 300.0, 35.0),
        "best": _point("convnext-t", "onnxruntime", 400.0, 40.0),
        "failed": make_record("swin-t", "openvino", status="failed", error="boom"),
    }


def test_front_drops_dominated_points_and_failures():
    points = hand_made()
    front = pareto_front(list(points.values()))
    assert [id(r) for r in front] == [id(points[name]) for name in ("fast", "mid", "best")]


def test_identical_points_are_both_on_the_front_and_order_does_not_matter():
    twin_a, twin_b = _point("r50", "onnxruntime", 100.0, 30.0), _point("r101", "onnxruntime", 100.0, 30.0)
    slower = _point("x101", "onnxruntime", 120.0, 29.0)
    for records in ([twin_a, slower, twin_b], [slower, twin_b, twin_a]):
        assert {id(r) for r in pareto_front(records)} == {id(twin_a), id(twin_b)}


def test_measured_ap_wins_over_the_zoo_and_changes_the_front():
    fast = _point("r50", "onnxruntime", 100.0, 30.0)
    slow = _point("convnext-t", "onnxruntime", 400.0, 40.0, measured_mask_ap=25.0)
    assert metric_value(slow, "mask_ap") == (25.0, "measured")
    assert metric_value(fast, "mask_ap") == (30.0, "zoo")
    assert pareto_front([fast, slow]) == [fast]
    assert len(pareto_front([fast, slow], "box_ap")) == 2  # box AP: zoo numbers, no domination


def test_every_ok_model_is_a_labelled_point_and_the_front_is_highlighted():
    points = hand_made()
    figure = pareto_figure(list(points.values()))
    axes = figure.axes[0]
    ok = [r for r in points.values() if r.ok]
    assert sorted(text.get_text() for text in axes.texts) == sorted(point_label(r) for r in ok)
    scatter_points = [tuple(offset) for collection in axes.collections for offset in collection.get_offsets()]
    assert sorted(scatter_points) == sorted((r.latency().mean_ms, r.zoo_mask_ap) for r in ok)
    highlighted = [c for c in axes.collections if tuple(c.get_facecolor()[0][:3]) == _rgb(FRONT_COLOUR)]
    assert len(highlighted) == len(pareto_front(ok))
    (step,) = axes.lines
    assert list(step.get_xdata()) == [r.latency().mean_ms for r in pareto_front(ok)]


def test_the_study_fixture_appears_whole_on_the_plot(study_records):
    labels = {text.get_text() for text in pareto_figure(study_records).axes[0].texts}
    assert labels == {point_label(r) for r in study_records if r.ok}


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
