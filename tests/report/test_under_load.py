"""A row measured under load is marked in the report (a footnote mark and the line explaining
it) and named in the CSV, and `recommend` says so when its pick was measured so."""

from __future__ import annotations

import csv

from synthetic_bench import make_record, make_results_dir

from maskbench.cli.main import main
from maskbench.report.benchmark_report import write_report
from maskbench.report.recommend import recommend
from maskbench.report.tables import UNDER_LOAD_MARK

QUIET = {"load_average_before": 0.3, "load_average_after": 1.2, "other_worker_pids": []}
LOADED = {"load_average_before": 1.0, "load_average_after": 3.4, "other_worker_pids": [4242]}
REASON = "1-min load average 3.4 > 2.5 (2 usable CPUs + 0.5); another maskbench worker was running (pid 4242)"


def _records():
    return [make_record("r101", mean_ms=400.0, **QUIET), make_record("convnext-t", mean_ms=480.0, **LOADED)]


def test_the_report_marks_rows_measured_under_load(tmp_path):
    files = write_report(_records(), make_results_dir(tmp_path, _records()), overlay_pair=None)
    markdown = files.markdown.read_text()
    results = markdown.split("## Results", 1)[1].split("##", 1)[0]
    assert f"| convnext-t {UNDER_LOAD_MARK} |" in results and "| r101 |" in results
    assert f"- {UNDER_LOAD_MARK} measured under load: other work wanted the CPU" in results
    assert f"- convnext-t / onnxruntime / fp32: {REASON}" in results
    assert "r101 / onnxruntime" not in results
    page = files.html.read_text()
    assert f"convnext-t {UNDER_LOAD_MARK}</td>" in page and "measured under load: other work" in page
    with open(files.csv, newline="") as handle:
        rows = {row["alias"]: row["measured_under_load"] for row in csv.DictReader(handle)}
    assert rows == {"r101": "", "convnext-t": REASON}


def test_a_quiet_report_has_no_mark(tmp_path):
    records = [make_record("r101", mean_ms=400.0, **QUIET)]
    markdown = write_report(records, make_results_dir(tmp_path, records), overlay_pair=None).markdown.read_text()
    assert UNDER_LOAD_MARK not in markdown and "under load" not in markdown


def test_recommend_says_when_its_pick_was_measured_under_load(tmp_path, capsys):
    result = recommend(_records())
    assert result.pick.alias == "convnext-t"
    assert result.reason.endswith(f" It was measured under load ({REASON}): its latency may be lower on a quiet "
                                  "machine; measure it again with the machine idle before relying on the budget.")
    assert "under load" not in recommend(_records(), max_latency_ms=450.0).reason  # r101: quiet

    folder = make_results_dir(tmp_path, _records())
    assert main(["recommend", "--results", str(folder)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("pick: convnext-t (ConvNeXt-T)")
    assert "It was measured under load (1-min load average 3.4" in last
