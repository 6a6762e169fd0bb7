"""The report's intervals: the p50 CI column, the pairs table of jobs compared directly, and
the notes that say which were (records only; no model runs)."""

from __future__ import annotations

from synthetic_bench import make_record

from maskbench.report.tables import pairs_table, results_table, timing_notes

ROUNDS_A = [110.0, 140.0, 105.0, 150.0, 120.0, 100.0]  # a machine drifting by +-25 %


def _interleaved(alias, factor, group="run/1", others=(), rounds=ROUNDS_A):
    record = make_record(alias, mean_ms=120.0 * factor)
    record.timing, record.interleave_group, record.compared_with = "interleaved", group, list(others)
    record.round_ms = [factor * ms for ms in rounds]
    record.call_ms = [factor * ms for ms in rounds for _ in range(2)]
    return record


def test_pairs_of_one_group_get_a_paired_ratio_and_a_verdict():
    r50_key, r101_key, cnx_key = (make_record(a).key for a in ("r50", "r101", "convnext-t"))
    a = _interleaved("r50", 1.0, others=[r101_key, cnx_key])
    b = _interleaved("r101", 1.2, others=[r50_key, cnx_key])
    c = _interleaved("convnext-t", 1.0, others=[r50_key, r101_key])
    alone = _interleaved("r50", 1.0, group="run/2")  # the same model in another group: not paired
    alone.runtime = "torch"
    table = pairs_table([a, b, c, alone])
    rows = {(row[0], row[1]): row for row in table.rows}
    assert set(rows) == {("r50 onnxruntime fp32", "r101 onnxruntime fp32"),
                         ("r50 onnxruntime fp32", "convnext-t onnxruntime fp32"),
                         ("r101 onnxruntime fp32", "convnext-t onnxruntime fp32")}
    faster = rows[("r50 onnxruntime fp32", "r101 onnxruntime fp32")]
    assert faster[2].startswith("0.833 [0.833–0.833]") and faster[3] == "r50 onnxruntime fp32 faster"
    assert rows[("r50 onnxruntime fp32", "convnext-t onnxruntime fp32")][3] == "tie within measurement"
    notes = timing_notes([a, b, c, alone])
    assert "group 1: r50 onnxruntime fp32, r101 onnxruntime fp32, convnext-t onnxruntime fp32" in notes[0]
    assert "group 2: r50 torch fp32" in notes[0]
    results = results_table([a, b])
    column = results.headers.index("p50 95% CI ms")
    assert all("–" in row[column] for row in results.rows)


def test_block_records_have_no_pairs_table_and_no_ci_column():
    records = [make_record("r50"), make_record("r101")]
    assert pairs_table(records) is None and timing_notes(records) == []
    assert "p50 95% CI ms" not in results_table(records).headers
