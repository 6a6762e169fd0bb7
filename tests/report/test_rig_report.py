"""Rig records beside the benchmark's in results.jsonl, the report's capacity table and load
plots, and reports merged from several machines (docs/rig.md "Records" and "Report")."""

from __future__ import annotations

import json

import pytest
from synthetic_bench import make_record
from synthetic_rig import MACHINE_B, make_rig_record

from maskbench.cli.main import main
from maskbench.report.benchmark_report import write_report
from maskbench.report.load_plot import load_figure, series
from maskbench.report.rig_section import CAPACITY_HEADING, LOAD_HEADING
from maskbench.report.rig_tables import capacity_table
from maskbench.results.records import append_record, read_records
from maskbench.results.rig_records import append_rig_record, latest_rig_records, read_rig_records
from maskbench.utils.errors import MaskbenchError


def rig_set():
    return [
        make_rig_record("r50", config="sync", capacity=1, p99_ms=60.0, service_ms=50.0),
        make_rig_record("r50", config="streams:2", capacity=3, p99_ms=110.0, service_ms=50.0, streams=2,
                        energy={"rapl:package-0": 2.5, "rapl:core": 1.75}),
        make_rig_record("rtmdet-ins-s", config="sync", load_unit=None, capacity=0, cameras=3, p99_ms=900.0,
                        misses=60, miss_share=0.44),
    ]


def test_one_file_holds_both_kinds_and_each_reader_reads_its_own(tmp_path):
    file = tmp_path / "results.jsonl"
    bench = make_record("r50")
    append_record(file, bench)
    assert read_rig_records(file) == []  # an old benchmark-only file: no rig record, no error
    rig = rig_set()[1]
    append_rig_record(file, rig)
    append_record(file, make_record("r101"))
    assert [r.alias for r in read_records(file)] == ["r50", "r101"]
    assert read_rig_records(file) == [rig]  # the round trip keeps every field (curve points too)
    with file.open("ab") as handle:
        handle.write(b'{"kind": "rig", "key": "torn')  # a kill mid-write
    assert read_rig_records(file) == [rig] and len(read_records(file)) == 2
    with file.open("ab") as handle:
        handle.write(b'\n{"kind": "rig", "model": 3}\n{}\n')
    with pytest.raises(MaskbenchError, match=r"results.jsonl:4: not a rig record"):  # the torn line, now inside
        read_rig_records(file)


def test_the_newest_record_of_a_run_wins_per_machine():
    old = make_rig_record("r50", p99_ms=140.0)
    new = make_rig_record("r50", p99_ms=120.0)
    elsewhere = make_rig_record("r50", p99_ms=90.0, machine=MACHINE_B)
    assert latest_rig_records([old, elsewhere, new]) == [new, elsewhere]


def test_capacity_table_rows():
    table = capacity_table(rig_set())
    assert table.headers[:5] == ["Model", "Runtime", "Precision", "Config", "Held"]
    rows = {(row[0], row[3]): dict(zip(table.headers, row)) for row in table.rows}
    streams = rows[("r50", "streams:2")]
    assert streams["Held"] == "3 cam at 12 Hz" and streams["p99 ms"] == "110" and streams["CPU-s/frame"] == "0.050"
    assert streams["Energy/frame"] == "rapl:core 1.75 J; rapl:package-0 2.5 J"
    assert rows[("r50", "sync")]["Energy/frame"] == "no counter"
    single = rows[("rtmdet-ins-s", "sync")]
    assert single["Held"] == "3 cam at 12 Hz: fails" and single["Misses"] == "44.0 % (60)"


def test_load_plot_draws_each_configuration_against_offered_load():
    records = rig_set()[:2]
    points = series(records)
    assert sorted(points) == ["openvino/fp32 streams:2", "openvino/fp32 sync"]
    streams = points["openvino/fp32 streams:2"]
    assert [p.offered_hz for p in streams] == [12.0, 24.0, 36.0, 48.0, 60.0]
    assert [p.holds for p in streams] == [True, True, True, False, False]  # 2 streams x 20/s = 40 frames/s
    figure = load_figure(records, "r50")
    (axes,) = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert list(lines["openvino/fp32 streams:2 p99"].get_ydata()) == [p.p99_ms for p in streams]
    assert list(lines["deadline 150 ms"].get_ydata()) == [150.0, 150.0]


def test_report_gains_capacity_table_and_plots_in_markdown_and_html(tmp_path):
    files = write_report([make_record("r50")], tmp_path, overlay_pair=None, rig_records=rig_set())
    markdown = files.markdown.read_text()
    assert f"## {CAPACITY_HEADING}" in markdown and f"## {LOAD_HEADING}" in markdown
    assert "| r50 | openvino | fp32 | streams:2 | 3 cam at 12 Hz |" in markdown
    assert [p.name for p in files.load_plots] == ["rig-load-r50.png"]  # the single run made here has no curve
    assert "![rig-load-r50](rig-load-r50.png)" in markdown
    page = files.html.read_text()
    assert CAPACITY_HEADING in page and page.count("data:image/png;base64,") == 2  # Pareto + one load plot
    assert "no readable energy counter" in page


def test_report_without_rig_records_has_no_rig_section(tmp_path):
    files = write_report([make_record("r50")], tmp_path, overlay_pair=None)
    assert CAPACITY_HEADING not in files.markdown.read_text() and files.load_plots == []


def test_report_merges_machines_with_a_machine_column(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    append_record(a / "results.jsonl", make_record("r50", mean_ms=400.0))
    append_record(b / "results.jsonl", make_record("r50", mean_ms=90.0, environment=MACHINE_B))  # same job key
    append_rig_record(a / "results.jsonl", make_rig_record("r50", capacity=1))
    append_rig_record(b / "results.jsonl", make_rig_record("r50", capacity=6, machine=MACHINE_B))
    out = tmp_path / "merged"
    assert main(["report", "--results", str(a), str(b / "results.jsonl"), "--out", str(out), "--pair", "r50,r101"]) == 0
    assert "2 benchmark record(s) and 2 rig record(s)" in capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    assert "| Model | Machine | Backbone |" in markdown  # the same job from two machines: two rows
    assert "| r50 | Synthetic CPU | ResNet-50 |" in markdown
    assert "| r50 | Synthetic CPU B + Synthetic GPU | ResNet-50 |" in markdown
    assert "| r50 | openvino | fp32 | sync | Synthetic CPU B + Synthetic GPU | 6 cam at 12 Hz |" in markdown
    single = tmp_path / "single"
    assert main(["report", "--results", str(a), "--out", str(single), "--pair", "r50,r101"]) == 0
    assert "Machine" not in (single / "report.md").read_text()


def test_report_of_rig_records_only(tmp_path, capsys):
    folder = tmp_path / "rig"
    for record in rig_set():
        append_rig_record(folder / "results.jsonl", record)
    assert main(["report", "--results", str(folder), "--pair", "r50,r101"]) == 0
    assert "0 benchmark record(s) and 3 rig record(s)" in capsys.readouterr().out
    assert CAPACITY_HEADING in (folder / "report.md").read_text()
    assert json.loads((folder / "results.json").read_text()) == []
