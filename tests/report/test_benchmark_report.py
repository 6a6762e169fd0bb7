"""write_report: the study-like table from the records' own numbers, the notes a reader needs,
failures, CSV/JSON that read back, and one self-contained HTML page."""

from __future__ import annotations

import csv
import json
import re

import pytest
from synthetic_bench import make_record, make_results_dir, study_set

from maskbench.report.benchmark_report import write_report
from maskbench.report.export import flatten
from maskbench.report.tables import RANDOM_WEIGHTS_WARNING, results_table, schedule_note, setup_notes
from maskbench.results.records import BenchmarkRecord


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One report shared by the read-only tests (rendering takes a second or two)."""
    records = study_set()
    return records, write_report(records, make_results_dir(tmp_path_factory.mktemp("study"), records))


@pytest.fixture
def report(rendered):
    return rendered[1]


@pytest.fixture
def study_records(rendered):
    return rendered[0]


def _rows(markdown: str) -> dict[str, list[str]]:
    """The results table's data rows by model alias (the first table of the report)."""
    table = markdown.split("## Results", 1)[1].split("\n\n")[1]
    lines = table.splitlines()
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(headers, cells))
    return rows


def test_table_numbers_come_from_the_records(report, study_records):
    rows = _rows(report.markdown.read_text())
    ok = [r for r in study_records if r.ok]
    assert set(rows) == {r.alias for r in ok}
    for record in ok:
        row, stats = rows[record.alias], record.latency()
        assert row["Backbone"] == record.backbone and row["Schedule"] == record.schedule
        assert row["Mask AP (zoo)"] == f"{record.zoo_mask_ap:.1f}" and row["Box AP (zoo)"] == f"{record.zoo_box_ap:.1f}"
        assert row["Mean ms"] == f"{stats.mean_ms:,.1f}" and row["p95 ms"] == f"{stats.p95_ms:,.1f}"
        assert row["p50 ms"] == f"{stats.p50_ms:,.1f}"
        assert row["Images/s"] == f"{stats.images_per_s:.2f}"
        assert row["Inference ms"] == f"{record.latency('inference').mean_ms:,.1f}"
        assert row["Steady RSS MiB"] == f"{record.steady_rss_mb:,.0f}"
        assert row["Params (M)"] == f"{record.params / 1e6:.1f}"
    assert "Mask AP (measured)" not in next(iter(rows.values()))  # no record measured AP
    assert "GPU MiB" not in next(iter(rows.values()))  # CPU only


def test_failures_are_listed_below_the_table_with_their_first_line(report, study_records):
    text = report.markdown.read_text()
    failed = [r for r in study_records if not r.ok]
    section = text.split("## Failed runs", 1)[1]
    assert text.index("## Results") < text.index("## Failed runs")
    for record in failed:
        first_line = record.error.splitlines()[0]
        assert f"{record.alias} / {record.runtime} / {record.precision}: {record.status}: {first_line}" in section
        assert record.error.splitlines()[1] not in section.split("##")[0]


def test_setup_notes_precede_the_table(report, study_records):
    text = report.markdown.read_text()
    setup = text.split("## Results", 1)[0]
    assert RANDOM_WEIGHTS_WARNING in setup
    assert "stretch" in setup and "800x1344" in setup and "threads: 2" in setup
    assert "torch 2.14.1" in setup and "onnxruntime 1.99.0" in setup
    record = study_records[0]
    assert f"{record.job['warmup']} warm-up" in setup and f"{record.job['repeat']} timed pass" in setup
    assert "3x" in setup and "1x" in setup  # ConvNeXt-T is 3x, the ResNets 1x
    startup = text.split("## Start-up", 1)[1]
    assert f"{record.prepare_s:.2f}" in startup and f"{record.first_call_ms:,.1f}" in startup


def test_official_weights_carry_no_warning():
    records = [make_record("r101", weights_kind="official"), make_record("x101", weights_kind="official")]
    notes = setup_notes(records)
    assert RANDOM_WEIGHTS_WARNING not in notes
    assert any("official" in note for note in notes)


def test_schedule_note_names_the_differently_trained_rows():
    note = schedule_note([make_record("r101"), make_record("r101-3x"), make_record("convnext-t")])
    assert "r101-3x" in note and "convnext-t" in note and "multi-scale" in note
    assert "every model 1x" in schedule_note([make_record("r101"), make_record("x101")])


def test_measured_ap_and_gpu_memory_get_their_own_columns():
    records = [make_record("r101", measured_mask_ap=12.5, measured_box_ap=14.25, gpu_memory_mb=2048.0,
                           device="cuda:0"), make_record("x101")]
    table = results_table(records)
    first = dict(zip(table.headers, table.rows[0]))
    second = dict(zip(table.headers, table.rows[1]))
    assert first["Mask AP (measured)"] == "12.5" and first["Box AP (measured)"] == "14.2"
    assert first["Mask AP (zoo)"] == f"{records[0].zoo_mask_ap:.1f}"
    assert second["Mask AP (measured)"] == "–"
    assert first["GPU MiB"] == "2,048"


def test_stage_table_only_for_records_with_stages(report, study_records):
    section = report.markdown.read_text().split("## Network stages", 1)[1].split("##")[0]
    with_stages = [r for r in study_records if r.ok and r.stages]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert [line.split("|")[1].strip() for line in table[2:]] == [r.alias for r in with_stages]
    assert f"{with_stages[0].latency('backbone+fpn').mean_ms:,.1f}" in section
    assert table[0].index("backbone+fpn ms") < table[0].index("rpn ms")  # network order, not the file's


def test_csv_and_json_read_back(report, study_records):
    records = json.loads(report.json.read_text())
    assert [BenchmarkRecord.from_dict(r) for r in records] == study_records
    with open(report.csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["key"] for row in rows] == [r.key for r in study_records]
    for row, record in zip(rows, study_records):
        expected = flatten(record)
        assert row["status"] == record.status
        if record.ok:
            assert float(row["end_to_end.mean_ms"]) == pytest.approx(record.latency().mean_ms)
            assert float(row["images_per_s"]) == pytest.approx(record.latency().images_per_s)
            assert row["environment.packages.torch"] == expected["environment.packages.torch"]
        else:
            assert row["end_to_end"] == "" and row["error"] == record.error
    assert "stages.backbone+fpn.mean_ms" in rows[0]


def test_overlays_default_to_convnext_vs_r101(report):
    assert len(report.overlays) == 2 and all(p.exists() for p in report.overlays)
    assert report.notes == []
    text = report.markdown.read_text()
    assert "left: ConvNeXt-T" in text and "right: ResNet-101" in text


def test_html_is_self_contained_and_escaped(tmp_path):
    study_records = study_set()
    study_records[-1].error = "<script>alert(1)</script> failed"
    page = write_report(study_records, make_results_dir(tmp_path, study_records)).html.read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page and "<link" not in page
    sources = re.findall(r"<img[^>]*\ssrc='([^']*)'", page)
    assert len(sources) == 1 + 2  # the plot and two overlays
    assert all(src.startswith("data:image/") for src in sources)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; failed" in page
    assert RANDOM_WEIGHTS_WARNING.replace("'", "&#x27;") in page
    for record in study_records:
        assert record.alias in page


def test_report_without_ok_records_still_writes_every_file(tmp_path):
    files = write_report([make_record("r50", status="timeout", error="no answer within 3600 s")], tmp_path)
    for path in (files.markdown, files.csv, files.json, files.pareto_png, files.pareto_svg, files.html):
        assert path.exists()
    assert "no answer within 3600 s" in files.markdown.read_text()
    assert any("skipped" in note for note in files.notes)


def test_fidelity_table_and_its_random_weights_sentence(tmp_path):
    from maskbench.verify.fidelity import RANDOM_WEIGHTS_NOTE

    records = [make_record("r50", "openvino", mean_ms=900.0, feature_cosine=0.99998, feature_rel_error=8.4e-5,
                           fidelity_matched=100.0, fidelity_reference_count=100.0, mean_mask_iou=1.0,
                           area_weighted_mask_iou=1.0, fidelity_note=RANDOM_WEIGHTS_NOTE),
               make_record("r50", "openvino", precision="int8", mean_ms=450.0, feature_cosine=0.6555,
                           feature_rel_error=0.868, fidelity_matched=4.0, fidelity_reference_count=100.0,
                           mean_mask_iou=0.189, area_weighted_mask_iou=0.218, fidelity_note=RANDOM_WEIGHTS_NOTE,
                           reference_mask_ap=34.7, ap_drop=2.25),
               make_record("r101", "tensorrt", mean_ms=100.0,
                           fidelity_note="no fidelity measurement: feature taps are not available for tensorrt")]
    markdown = write_report(records, make_results_dir(tmp_path, records), overlay_pair=None).markdown.read_text()
    section = markdown.split("## Fidelity against fp32 eager PyTorch", 1)[1].split("\n## ", 1)[0]
    assert "| r50 | openvino | int8 | 0.6555 | 8.68e-01 | 4.0/100.0 | 0.189 | 0.218 | 34.7 | 2.25 |" in section
    assert "| r50 | openvino | fp32 | 1.0000 | 8.40e-05 | 100.0/100.0 | 1.000 | 1.000 | – | – |" in section
    assert RANDOM_WEIGHTS_NOTE in section and section.count(RANDOM_WEIGHTS_NOTE) == 1
    assert "r101 / tensorrt / fp32: no fidelity measurement" in section
    assert "Fidelity against fp32 eager PyTorch" in (tmp_path / "bench" / "report.html").read_text()
    assert "## Fidelity" not in write_report(study_set(), tmp_path / "plain", overlay_pair=None).markdown.read_text()
