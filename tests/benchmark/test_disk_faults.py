"""`maskbench benchmark` on a full or read-only --out, with stand-in workers (no model is built):
one line, exit code 2, the finished records intact, and a rerun that measures each job once."""

import errno
import os
import sys
import textwrap
from functools import partial

import pytest
from disk_faults import READ_ONLY_WAYS, disk_full_on, no_temporary_files, unwritable_folder

from maskbench.benchmark import runner
from maskbench.benchmark.space import DETECTIONS_BYTES_PER_FRAME, JOB_FILES_BYTES
from maskbench.cli.main import main
from maskbench.data.sources import embedded_nuscenes, find_images
from maskbench.report.benchmark_report import REPORT_BASE_BYTES, REPORT_BYTES_PER_OVERLAY
from maskbench.results.records import FAILED, OK, read_records
from maskbench.utils.write_errors import WriteFailed, megabytes

# Writes an ok record like the worker's, and a detections file of DETECTIONS_KB (default 1);
# with FAIL_ON_DISK=<model alias>, that job finds the output folder full instead.
STAND_IN_WORKER = textwrap.dedent("""
    import errno, json, os, sys

    from maskbench.utils.errors import MaskbenchError
    from maskbench.utils.files import writing_in
    from maskbench.results.records import BenchmarkJob, BenchmarkRecord
    from maskbench.pipeline.coco_results import write_json_atomic
    from maskbench.results.stats import LatencyStats
    from maskbench.zoo import get_spec

    job_path, record_path, out_dir = sys.argv[1:4]
    job = BenchmarkJob.from_dict(json.load(open(job_path)))
    spec = get_spec(job.model)
    with open(os.path.join(out_dir, "calls.txt"), "a") as calls:
        calls.write(spec.alias + "\\n")
    record = BenchmarkRecord(key=job.key(), job=job.to_dict(), status="failed", model=spec.name, alias=spec.alias,
                             backbone=spec.backbone, runtime=job.runtime, precision=job.precision, device="cpu")
    try:
        detections = os.path.join(out_dir, "detections", job.slug() + ".json")
        if os.environ.get("FAIL_ON_DISK") == spec.alias:
            with writing_in(os.path.dirname(detections), os.path.basename(detections)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_json_atomic(detections, {"frames": [], "pad": "x" * 1024 * int(os.environ.get("DETECTIONS_KB", "1"))})
        stats = LatencyStats.from_seconds([0.01, 0.02]).to_dict()
        record.end_to_end = record.preprocess = record.inference = record.postprocess = record.decode = stats
        record.steady_rss_mb = record.peak_rss_mb = 100.0
        record.status = "ok"
    except MaskbenchError as err:
        record.error = str(err)
    write_json_atomic(record_path, record.to_dict())
""")
MODELS = ["r50", "convnext-t", "swin-t"]


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """The benchmark command runs the stand-in worker; returns a function listing its calls."""
    script = tmp_path / "stand_in_worker.py"
    script.write_text(STAND_IN_WORKER)
    monkeypatch.setattr(runner, "run_benchmark",
                        partial(runner.run_benchmark, worker_command=(sys.executable, str(script)), progress=False))
    return lambda out: (out / "calls.txt").read_text().splitlines() if (out / "calls.txt").exists() else []


def _benchmark(out) -> int:
    frame = find_images(embedded_nuscenes(), ["CAM_FRONT"])[0].path
    return main(["benchmark", "--models", ",".join(MODELS), "--runtimes", "torch", "--images", str(frame),
                 "--out", str(out)])


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def test_a_full_disk_on_the_records_stops_with_one_line_and_the_rerun_resumes(stand_in, tmp_path, monkeypatch,
                                                                               capsys):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        disk_full_on(patch, "results.jsonl", after=1)  # the second record finds the disk full mid-line
        assert _benchmark(out) == 2
    line = _error_line(capsys.readouterr().err)
    # 2 jobs left (a 1-frame job: the estimate from the frames), and the report (1 frame side by side)
    needed = 2 * (JOB_FILES_BYTES + DETECTIONS_BYTES_PER_FRAME) + REPORT_BASE_BYTES + REPORT_BYTES_PER_OVERLAY
    assert line.startswith(f"error: no space left in {out} (writing results.jsonl, [Errno 28]): about "
                           f"{megabytes(needed)} MB free needed for 2 job(s) and the report, ")
    assert line.endswith(f"MB free now; the finished jobs are kept in {out / 'results.jsonl'}: the same command "
                         "resumes; free space there or choose another --out")
    assert (out / "results.jsonl").read_bytes().endswith(b"\n")  # the torn line was cut again
    assert [(r.alias, r.status) for r in read_records(out / "results.jsonl")] == [("r50", OK)]
    assert stand_in(out) == ["r50", "convnext-t"]

    assert _benchmark(out) == 0
    assert [(r.alias, r.status) for r in read_records(out / "results.jsonl")] == [(m, OK) for m in MODELS]
    assert stand_in(out) == ["r50", "convnext-t", "convnext-t", "swin-t"]  # r50 not measured again
    assert (out / "report.html").is_file() and no_temporary_files(out)


def test_a_job_that_finds_the_output_folder_full_stops_the_run(stand_in, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setenv("FAIL_ON_DISK", "convnext-t")
    assert _benchmark(out) == 2
    captured = capsys.readouterr()
    assert f"convnext-t torch fp32: failed: no space left in {out / 'detections'}" in captured.out  # the job's line
    line = _error_line(captured.err)
    assert line.startswith(f"error: no space left in {out} (writing the results of convnext-t torch fp32, "
                           "[Errno 28]): about ")
    assert "MB free needed for 2 job(s) and the report" in line
    assert [(r.alias, r.status) for r in read_records(out / "results.jsonl")] == [("r50", OK), ("convnext-t", FAILED)]
    assert stand_in(out) == ["r50", "convnext-t"]  # swin-t was not started


def test_a_torn_last_record_is_ignored_and_cut_by_the_rerun(stand_in, tmp_path):
    out = tmp_path / "out"
    assert _benchmark(out) == 0
    data = (out / "results.jsonl").read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    (out / "results.jsonl").write_bytes(data[: len(data) - len(last) // 2 - 1])  # swin-t's line torn in half
    assert [r.alias for r in read_records(out / "results.jsonl")] == ["r50", "convnext-t"]
    assert _benchmark(out) == 0
    assert [(r.alias, r.status) for r in read_records(out / "results.jsonl")] == [(m, OK) for m in MODELS]
    assert stand_in(out) == MODELS + ["swin-t"]


@pytest.mark.parametrize("how", READ_ONLY_WAYS)
def test_a_read_only_out_is_one_line(stand_in, tmp_path, monkeypatch, capsys, how):
    with unwritable_folder(monkeypatch, tmp_path / "out", how) as out:
        assert _benchmark(out) == 2
    line = _error_line(capsys.readouterr().err)
    what = (f"{out} is on a read-only file system (writing .maskbench.lock" if how == "EROFS"
            else f"no permission to write in {out}")
    assert line.startswith(f"error: {what}") and "choose another --out" in line
    assert list(out.iterdir()) == [] and stand_in(out) == []


def test_a_real_full_tmpfs(stand_in, small_tmpfs, monkeypatch, capsys):
    monkeypatch.setenv("DETECTIONS_KB", "400")  # two jobs fit in 1 MB, not three
    assert _benchmark(small_tmpfs) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("error: no space left in ") and "MB free needed for 1 job(s) and the report" in line
    assert [(r.alias, r.status) for r in read_records(small_tmpfs / "results.jsonl")][:2] == [("r50", OK),
                                                                                              ("convnext-t", OK)]
    assert no_temporary_files(small_tmpfs)


def test_the_runner_raises_write_failed_for_its_caller(tmp_path, stand_in, monkeypatch):
    """Without the command's estimate the error still names the folder (library use)."""
    from maskbench.results.records import BenchmarkJob

    monkeypatch.setenv("FAIL_ON_DISK", "r50")
    with pytest.raises(WriteFailed) as caught:
        runner.run_benchmark([BenchmarkJob(model="mask-rcnn_r50_fpn_1x_coco", runtime="torch", images=("x.jpg",))],
                             tmp_path / "out")
    assert caught.value.code == errno.ENOSPC and caught.value.folder == tmp_path / "out"


def test_report_on_a_full_disk_is_one_line(stand_in, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert _benchmark(out) == 0
    capsys.readouterr()

    def fsync(fd):  # the data were buffered: the disk is found full when they are flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["report", "--results", str(out), "--out", str(tmp_path / "again")]) == 2
    line = _error_line(capsys.readouterr().err)
    needed = REPORT_BASE_BYTES + REPORT_BYTES_PER_OVERLAY  # no report there yet; one frame side by side
    assert line.startswith(f"error: no space left in {tmp_path / 'again'} (writing pareto.png, [Errno 28]): about "
                           f"{megabytes(needed)} MB free needed for the report, ")
    assert not (tmp_path / "again" / "pareto.png").exists() and no_temporary_files(tmp_path)
