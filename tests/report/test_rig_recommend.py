"""``maskbench recommend --cameras N --fps F --deadline D [--max-power W]`` over rig records."""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic_bench import make_record
from synthetic_rig import MACHINE_B, make_rig_record

from maskbench.cli.main import main
from maskbench.report.rig_recommend import RigDemand, average_power_w, precision_costs, recommend_rig
from maskbench.results.records import append_record
from maskbench.results.rig_records import append_rig_record

ASKED = RigDemand(cameras=3, fps=12.0, deadline_ms=150.0)


def candidates():
    return [
        make_rig_record("r50", config="sync", capacity=2, p99_ms=90.0),
        make_rig_record("r50", config="streams:2", capacity=4, p99_ms=120.0, energy={"rapl:package-0": 1.0}),
        make_rig_record("r50", config="streams:4", capacity=3, p99_ms=140.0),
        make_rig_record("x101", config="streams:2", capacity=2, p99_ms=140.0),  # more accurate, holds 2 cameras
        make_rig_record("r101", config="streams:2", capacity=5, p99_ms=100.0, deadline_ms=250.0),  # looser deadline
    ]


def test_picks_the_most_accurate_model_that_holds_and_its_lowest_p99_configuration():
    result = recommend_rig(candidates(), ASKED)
    assert result.pick is not None and (result.pick.alias, result.pick.config) == ("r50", "streams:2")
    assert [(r.alias, r.config) for r in result.fitting] == [("r50", "streams:2"), ("r50", "streams:4")]
    why = {(r.alias, r.config): reason for r, reason in result.rejected}
    assert why[("r50", "sync")] == "holds 2 cam at 12 Hz, less than asked"
    assert why[("r101", "streams:2")].startswith("judged against a 250 ms deadline, looser than 150 ms")
    assert result.reason.startswith("deploy r50 on openvino fp32 with --config streams:2: mask AP 34.7")
    assert "the more accurate r101-" not in result.reason
    assert "the more accurate x101 openvino/fp32 streams:2 does not hold it: holds 2 cam at 12 Hz" in result.reason


def test_a_rate_search_and_a_single_run_hold_by_their_own_load():
    by_rate = make_rig_record("r50", load_unit="fps", capacity=15.0, cameras=3, rate_hz=15.0)
    slow = make_rig_record("r50", config="streams:2", load_unit="fps", capacity=10.0, cameras=3, rate_hz=10.0)
    run_ok = make_rig_record("r101", load_unit=None, capacity=3, cameras=3, miss_share=0.004)
    run_bad = make_rig_record("x101", load_unit=None, capacity=0, cameras=3, holds=False, miss_share=0.2)
    result = recommend_rig([by_rate, slow, run_ok, run_bad], ASKED)
    assert result.pick is run_ok  # r101 (36.1) above r50 (34.7); x101 (37.5) missed 20 %
    assert dict((r.alias, w) for r, w in result.rejected) == {"r50": "holds 3 cam at 10 Hz, less than asked",
                                                              "x101": "misses 20.0% > 1.0%"}
    strict = recommend_rig([run_ok], RigDemand(3, 12.0, 150.0, max_miss=0.001))
    assert strict.pick is None and "misses 0.4% > 0.1%" in strict.describe()


def test_power_budget_uses_measured_energy_and_refuses_the_unmeasured():
    records = candidates()
    assert average_power_w(records[1]) == (pytest.approx(48.0), "rapl:package-0")  # 1 J/frame x 48 frames/s
    result = recommend_rig(records, RigDemand(3, 12.0, 150.0, max_power_w=50.0))
    assert result.pick is records[1]
    assert ("r50", "streams:4", "no energy measured on Synthetic CPU A") in [
        (r.alias, r.config, w) for r, w in result.rejected]
    tight = recommend_rig(records, RigDemand(3, 12.0, 150.0, max_power_w=40.0))
    assert tight.pick is None and "48.0 W (rapl:package-0) > 40 W" in tight.describe()


def test_widest_counter_per_source_summed():
    record = make_rig_record("r50", energy={"rapl:package-0": 2.0, "rapl:core": 1.5, "nvml:gpu0": 3.0})
    watts, which = average_power_w(record)
    assert watts == pytest.approx(5.0 * 36.0) and which == "rapl:package-0 + nvml:gpu0"


def test_no_energy_anywhere_is_said_plainly():
    records = [make_rig_record("r50", capacity=4), make_rig_record("r50", capacity=4, machine=MACHINE_B)]
    result = recommend_rig(records, RigDemand(3, 12.0, 150.0, max_power_w=30.0))
    assert result.pick is None
    assert "no record has an energy measurement (no readable counter on Synthetic CPU A, Synthetic CPU B + " \
           "Synthetic GPU)" in result.describe()
    assert result.reason.startswith("nothing can be checked against --max-power 30 W")


def test_nothing_holds_names_the_most_cameras_held():
    result = recommend_rig(candidates()[:1], RigDemand(8, 12.0, 150.0))
    assert result.pick is None
    assert result.reason == ("nothing holds 8 camera(s) at 12 Hz within 150 ms. The most cameras held: r50 "
                             "openvino/fp32 sync, 2 cam at 12 Hz within 150 ms.")


def test_recommend_picks_from_a_results_file_of_rig_records_only(tmp_path, capsys):
    """What `maskbench rig --out OUT` leaves: rig records alone; the benchmark's recommend on it
    says how to ask for a rig pick."""
    folder = tmp_path / "rig"
    for record in candidates():
        append_rig_record(folder / "results.jsonl", record)
    assert main(["recommend", "--results", str(folder), "--cameras", "3", "--fps", "12", "--deadline", "150ms"]) == 0
    assert "pick: deploy r50 on openvino fp32 with --config streams:2" in capsys.readouterr().out
    assert main(["recommend", "--results", str(folder), "--max-latency", "10s"]) == 2
    assert "only rig records; give --cameras, --fps and --deadline" in capsys.readouterr().err


def test_recommend_command_with_rig_options(tmp_path, capsys):
    folder = tmp_path / "out"
    append_record(folder / "results.jsonl", make_record("convnext-t"))  # a benchmark record is not a rig pick
    for record in candidates():
        append_rig_record(folder / "results.jsonl", record)
    assert main(["recommend", "--results", str(folder), "--cameras", "3", "--fps", "12", "--deadline", "150ms"]) == 0
    out = capsys.readouterr().out
    assert "pick: deploy r50 on openvino fp32 with --config streams:2" in out
    assert main(["recommend", "--results", str(folder), "--cameras", "9", "--fps", "12", "--deadline", "0.15s"]) == 1
    assert main(["recommend", "--results", str(folder), "--cameras", "3", "--fps", "12"]) == 2
    assert capsys.readouterr().err.strip().endswith("add --deadline")
    assert main(["recommend", "--results", str(folder), "--max-power", "20"]) == 2
    assert "give --cameras, --fps and --deadline too" in capsys.readouterr().err
    assert main(["recommend", "--results", str(folder), "--max-latency", "10s"]) == 0  # the benchmark's, unchanged
    assert "convnext-t" in capsys.readouterr().out
    bench_only = tmp_path / "bench"
    append_record(bench_only / "results.jsonl", make_record("r50"))
    assert main(["recommend", "--results", str(bench_only), "--cameras", "3", "--fps", "12",
                 "--deadline", "150"]) == 2
    assert "no rig record in it; run `maskbench rig --out DIR`" in capsys.readouterr().err


RANDOM = "random (seed 0, calibrated, untrained)"  # synthetic_bench's random weights


def reduced_precisions():
    """r50 in fp32, bf16 and int8, all holding the rig, the faster the more reduced; a benchmark
    measured bf16's cost only (and an official checkpoint's int8, which is not these weights)."""
    rig = [make_rig_record("r50", precision=precision, config="streams:2", capacity=4, p99_ms=p99, weights=RANDOM)
           for precision, p99 in (("fp32", 120.0), ("bf16", 60.0), ("int8", 50.0))]
    bench = [make_record("r50", "openvino", precision="bf16", mean_mask_iou=0.95, ap_drop=0.4),
             make_record("r50", "openvino", precision="fp32", mean_mask_iou=1.0),
             make_record("r50", "openvino", precision="int8", weights_kind="official", mean_mask_iou=0.5)]
    return rig, bench


def test_the_picks_accuracy_cost_comes_from_the_benchmark_records_of_its_weights():
    rig, bench = reduced_precisions()
    result = recommend_rig(rig, ASKED, costs=precision_costs(bench))
    assert result.pick is not None and result.pick.precision == "int8"  # its official-weights cost is not its own
    assert result.reason.endswith("What int8 costs it in accuracy is not measured: measure it with maskbench benchmark "
                                  "--models r50 --runtimes openvino --precisions int8 --fidelity (the same weights) "
                                  "and give its results with the rig's (--results RIG BENCH).")
    result = recommend_rig(rig[:2], ASKED, costs=precision_costs(bench))
    assert result.pick is not None and result.pick.precision == "bf16"
    assert result.reason.endswith("Its openvino bf16 against fp32 eager PyTorch: mean mask IoU 0.950, AP drop 0.4 "
                                  "(benchmark record).")
    assert "costs it in accuracy" not in recommend_rig(rig[:1], ASKED).reason  # fp32: nothing to state


def test_fidelity_floors_reject_a_measured_precision_and_name_the_unchecked():
    rig, bench = reduced_precisions()
    result = recommend_rig(rig, replace(ASKED, min_mask_iou=0.97), costs=precision_costs(bench))
    why = {r.precision: reason for r, reason in result.rejected}
    assert why == {"bf16": "bf16: mean mask IoU 0.950 < 0.97"}
    assert result.pick is not None and result.pick.precision == "int8"  # unmeasured: not filtered, as the benchmark's
    assert any(note.startswith("fidelity floor not checked for r50 openvino/int8") for note in result.notes)
    result = recommend_rig(rig, replace(ASKED, max_ap_drop=0.3), costs=precision_costs(bench))
    assert {r.precision: reason for r, reason in result.rejected} == {"bf16": "bf16: AP drop 0.40 > 0.3"}
    assert "mean mask IoU >= " not in result.describe() and "AP drop <= 0.3" in result.describe()


def test_recommend_command_joins_the_benchmark_records_given_with_the_rig_records(tmp_path, capsys):
    rig, bench = reduced_precisions()
    folder = tmp_path / "out"
    for record in bench:
        append_record(folder / "results.jsonl", record)
    for record in rig[:2]:
        append_rig_record(folder / "results.jsonl", record)
    asked = ["recommend", "--results", str(folder), "--cameras", "3", "--fps", "12", "--deadline", "150ms"]
    assert main(asked) == 0
    assert "pick: deploy r50 on openvino bf16" in capsys.readouterr().out
    assert main([*asked, "--min-mask-iou", "0.97"]) == 0
    out = capsys.readouterr().out
    assert "bf16: mean mask IoU 0.950 < 0.97" in out and "pick: deploy r50 on openvino fp32" in out
