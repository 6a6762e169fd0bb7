"""recommend: budgets in words, the pick and its sentence, and the command."""

from __future__ import annotations

import pytest
from synthetic_bench import make_record, make_results_dir

from maskbench.cli.main import main
from maskbench.report.recommend import parse_latency_ms, parse_memory_mb, recommend


@pytest.mark.parametrize("text, mb", [("6GB", 6144.0), ("6 GiB", 6144.0), ("512MB", 512.0), ("1.5g", 1536.0),
                                      ("2048 MiB", 2048.0)])
def test_memory_budgets(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("text, ms", [("120ms", 120.0), ("1.2s", 1200.0), ("1.2 s", 1200.0), ("500us", 0.5)])
def test_latency_budgets(text, ms):
    assert parse_latency_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("parse, text", [(parse_memory_mb, "6"), (parse_memory_mb, "lots"), (parse_memory_mb, "6XB"),
                                         (parse_memory_mb, "-1GB"), (parse_latency_ms, "fast"),
                                         (parse_latency_ms, "120 GB")])
def test_garbage_budgets_say_how_to_write_them(parse, text):
    with pytest.raises(ValueError, match=f"'{text}' is not a .*e.g."):
        parse(text)


def _records():
    """(latency ms, mask AP zoo): r50 300/34.7, r101 400/36.1, x101 450/37.5, convnext-t 480/41.7,
    s101 900/40.2 (dominated by convnext-t); one failure."""
    return [make_record("r50", mean_ms=300.0), make_record("r101", mean_ms=400.0), make_record("x101", mean_ms=450.0),
            make_record("convnext-t", mean_ms=480.0), make_record("s101", mean_ms=900.0),
            make_record("swin-t", status="crashed", error="killed")]


def test_pick_is_the_most_accurate_within_budget():
    records = _records()
    result = recommend(records, max_latency_ms=460.0)
    assert result.pick.alias == "x101"
    assert [r.alias for r in result.fitting] == ["x101", "r101", "r50"]
    assert {r.alias for r, _ in result.rejected} == {"convnext-t", "s101"}
    assert [r.alias for r in result.front] == ["r50", "r101", "x101", "convnext-t"]
    assert "ResNeXt-101" in result.reason and "37.5 (zoo" in result.reason and "450 ms" in result.reason
    assert f"host memory {records[2].steady_rss_mb / 1024:.3g} GiB" in result.reason
    assert "convnext-t onnxruntime/fp32 (41.7) is over budget: latency 480 ms > 460 ms" in result.reason
    assert "the faster r50 onnxruntime/fp32 (300 ms)" in result.reason


def test_no_budget_picks_the_best_and_ties_go_to_the_faster():
    slow_twin = make_record("convnext-t", "torch", mean_ms=2000.0)
    result = recommend(_records() + [slow_twin])
    assert result.pick.alias == "convnext-t" and result.pick.runtime == "onnxruntime"
    assert "no budget" in result.reason


def test_measured_ap_is_preferred_and_named():
    records = _records()
    records[3].measured_mask_ap = 10.0  # convnext-t evaluated: far worse than published
    result = recommend(records)
    assert result.pick.alias == "s101"
    assert "(measured)" not in result.reason and "zoo" in result.reason
    assert "convnext-t onnxruntime/fp32: mask AP 10.0 (measured)" in result.describe()
    box = recommend(records, metric="box_ap")  # no measured box AP: the zoo's, where convnext-t leads
    assert box.pick.alias == "convnext-t" and "box AP" in box.reason


def test_nothing_fits_says_what_would():
    result = recommend(_records(), max_latency_ms=120.0, max_gpu_memory_mb=6144.0)
    assert result.pick is None and result.fitting == []
    assert "nothing fits GPU memory <= 6 GiB, latency <= 120 ms" in result.reason
    assert "fastest is r50 onnxruntime/fp32 at 300 ms" in result.reason
    assert "ran on the CPU" in result.reason


def test_gpu_memory_budget():
    small = make_record("r101", "tensorrt", mean_ms=90.0, device="cuda:0", gpu_memory_mb=3000.0)
    big = make_record("convnext-t", "tensorrt", mean_ms=110.0, device="cuda:0", gpu_memory_mb=7000.0)
    unknown = make_record("s101", "tensorrt", mean_ms=120.0, device="cuda:0")
    cpu = make_record("r50", mean_ms=300.0)
    result = recommend([small, big, unknown, cpu], max_gpu_memory_mb=parse_memory_mb("6GB"))
    assert result.pick is small
    reasons = dict((r.alias, why) for r, why in result.rejected)
    assert "GPU memory 6.84 GiB > 6 GiB" in reasons["convnext-t"] and reasons["s101"] == "GPU memory not measured"
    assert cpu in result.fitting  # the CPU uses no GPU memory
    assert "GPU memory 2.93 GiB" in result.reason


def test_host_memory_budget_uses_steady_rss():
    records = _records()
    limit = records[1].steady_rss_mb  # r101 fits exactly, slower ones use more
    result = recommend(records, max_memory_mb=limit)
    assert result.pick.alias == "r101"


def test_fidelity_floor_applies_only_to_records_that_carry_it():
    records = _records()
    records[3].mean_mask_iou = 0.5  # convnext-t converted badly
    result = recommend(records, min_mask_iou=0.9)
    assert result.pick.alias == "s101"
    assert any("not checked" in note for note in result.notes)
    records[4].ap_drop = 3.0
    assert recommend(records, min_mask_iou=0.9, max_ap_drop=1.0).pick.alias == "x101"


def _precisions(measured: bool = False):
    """r50 on openvino in three precisions (fp32 slowest), with fidelity; one torch record without."""
    fields = [("fp32", 900.0, 1.0, 0.0, 34.7), ("bf16", 600.0, 0.96, 0.4, 34.3), ("int8", 400.0, 0.85, 2.5, 32.2)]
    records = []
    for precision, ms, iou, drop, ap in fields:
        extra = {"measured_mask_ap": ap, "ap_drop": drop, "reference_mask_ap": 34.7} if measured else {}
        records.append(make_record("r50", "openvino", precision=precision, mean_ms=ms, mean_mask_iou=iou,
                                   feature_cosine=iou, **extra))
    unchecked = make_record("r50", "torch", mean_ms=950.0)
    if measured:
        unchecked.measured_mask_ap = 34.7
    return records + [unchecked]


def test_a_fidelity_floor_picks_the_fastest_precision_above_it():
    records = _precisions()  # zoo AP: every precision of r50 ties
    assert recommend(records).pick.precision == "int8"  # no floor: the fastest of equal AP
    result = recommend(records, min_mask_iou=0.9)
    assert (result.pick.precision, result.pick.runtime) == ("bf16", "openvino")
    assert any("r50 openvino/int8" in r and "mean mask IoU 0.850 < 0.9" in why
               for r, why in [(f"{x.alias} {x.runtime}/{x.precision}", w) for x, w in result.rejected])
    assert any("not checked for r50 torch/fp32" in note and "--fidelity" in note for note in result.notes)
    assert recommend(records, min_mask_iou=0.99).pick.precision == "fp32"


def test_with_measured_ap_the_floor_accepts_the_loss_it_allows():
    records = _precisions(measured=True)
    assert recommend(records).pick.precision == "fp32"  # no floor: the most accurate
    result = recommend(records, max_ap_drop=1.0)
    assert result.pick.precision == "bf16"  # 0.4 points lost for 1.5x: within the floor, the fastest
    assert "count as equally accurate" in result.reason and "34.7" in result.reason
    assert recommend(records, max_ap_drop=3.0).pick.precision == "int8"


def test_the_sentence_says_when_a_reduced_precision_is_the_better_pick_and_at_what_fidelity():
    int8 = recommend(_precisions())  # zoo AP ties: the fastest, int8, against its fp32
    assert int8.pick.precision == "int8"
    assert "Reduced precision is the better pick here: 2.25x the speed of its fastest fp32 " \
           "(r50 openvino/fp32, 900 ms) at mean mask IoU 0.850 with fp32" in int8.reason
    fp32 = recommend(_precisions(measured=True))  # measured AP: fp32 wins; bf16 is named with its cost
    assert fp32.pick.precision == "fp32"
    assert "A reduced precision is faster: r50 openvino/int8 at 400 ms (2.25x) with mean mask IoU 0.850 with " \
           "fp32, AP drop 2.5; --min-mask-iou 0.85 or --max-ap-drop 2.5 accepts that loss." in fp32.reason
    budget = recommend(_precisions(measured=True), max_latency_ms=450)  # only int8 fits: said with its cost
    assert budget.pick.precision == "int8" and "2.25x the speed" in budget.reason and "AP drop 2.5" in budget.reason
    only_fp32 = recommend([r for r in _precisions(measured=True) if r.precision == "fp32"])
    assert "reduced precision" not in only_fp32.reason.lower()
    unmeasured = recommend([make_record("r50", "openvino", precision="fp32", mean_ms=900.0),
                            make_record("r50", "openvino", precision="bf16", mean_ms=600.0)])
    assert "1.50x the speed" in unmeasured.reason
    assert "fidelity not measured (benchmark --fidelity)" in unmeasured.reason


def test_recommend_command_takes_fidelity_floors(tmp_path, capsys):
    folder = make_results_dir(tmp_path, _precisions())
    assert main(["recommend", "--results", str(folder), "--min-mask-iou", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "pick: r50 (ResNet-50) on openvino bf16" in out and "mean mask IoU >= 0.9" in out
    assert main(["recommend", "--results", str(folder), "--min-mask-iou", "0.9", "--max-latency", "500ms"]) == 1


def test_recommend_command(results_dir, capsys):
    assert main(["recommend", "--results", str(results_dir), "--max-latency", "460ms"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "pick: x101 (ResNeXt-101" in out
    assert main(["recommend", "--results", str(results_dir / "results.jsonl"), "--max-latency", "10ms"]) == 1
    assert "nothing fits" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["recommend", "--results", str(results_dir), "--max-gpu-memory", "six"])
    assert exit_info.value.code == 2 and "'six' is not a memory size" in capsys.readouterr().err
    assert main(["recommend", "--results", str(results_dir / "absent")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_report_command_renders_again(results_dir, tmp_path, capsys):
    out = tmp_path / "again"
    assert main(["report", "--results", str(results_dir), "--out", str(out), "--pair", "x101,s101"]) == 0
    assert (out / "report.html").exists() and len(list((out / "overlays").glob("*.png"))) == 2
    assert "left: ResNeXt-101" in (out / "report.md").read_text()


def _timed(record, rounds, group="run/1", others=()):
    record.timing, record.interleave_group, record.compared_with = "interleaved", group, list(others)
    record.round_ms = list(rounds)
    return record


def test_a_latency_tie_within_measurement_is_said_not_hidden():
    drift = [300.0, 360.0, 290.0, 380.0, 310.0, 340.0]
    onnx, openvino = make_record("r50", mean_ms=330.0), make_record("r50", "openvino", mean_ms=335.0)
    _timed(onnx, [ms * 1.0 for ms in drift], others=[openvino.key])
    _timed(openvino, [ms * 1.01 + (5.0 if i % 2 else -5.0) for i, ms in enumerate(drift)], others=[onnx.key])
    result = recommend([onnx, openvino])  # same model, same zoo AP: latency decides
    assert result.pick is onnx
    assert "tie within measurement with the equally accurate r50 openvino/fp32" in result.reason
    assert "interleaved in the same rounds" in result.reason
    # told apart (a steady 20 % in the same rounds): no tie
    _timed(openvino, [ms * 1.2 for ms in drift], others=[onnx.key])
    assert "tie within measurement" not in recommend([onnx, openvino]).reason
    # more accurate wins whatever the latency: no tie to speak of
    convnext = _timed(make_record("convnext-t", mean_ms=332.0), drift, others=[onnx.key])
    assert "tie within measurement" not in recommend([onnx, convnext]).reason


def test_a_floor_tie_within_measurement_does_not_claim_the_fastest():
    drift = [300.0, 360.0, 290.0, 380.0]
    fp32 = _timed(make_record("r50", "openvino", mean_ms=330.0, mean_mask_iou=1.0), drift)
    bf16 = _timed(make_record("r50", "openvino", precision="bf16", mean_ms=329.0, mean_mask_iou=0.97),
                  [ms * 0.999 for ms in drift])
    fp32.measured_mask_ap, bf16.measured_mask_ap = 34.7, 34.5
    result = recommend([fp32, bf16], min_mask_iou=0.95)
    assert result.pick is bf16
    assert "this one is listed first" in result.reason and "this is the fastest" not in result.reason
    assert "tie within measurement" in result.reason and "timed in separate blocks" in result.reason
