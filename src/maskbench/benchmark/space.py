"""How much disk a benchmark still needs, and when a failed job means the disk is the problem.

Both serve the one-line error of a full output folder. The need is measured where possible:
the files the jobs already run left (detections, log, job and record files, their line in
``results.jsonl``), the largest per job, times the jobs still to run, plus the report; never
less than the estimate from the frames (100 instances with RLE masks on a 1600x900 frame:
130-430 KB of detections, measured on convnext-t and r50 with random weights; the largest is
taken).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..report.benchmark_report import report_size_estimate
from ..results.records import OK, RESULTS_FILE, BenchmarkJob, BenchmarkRecord, latest_records, read_records
from ..utils.write_errors import ALWAYS_WRITES, WriteFailed, errno_in

DETECTIONS_BYTES_PER_FRAME = 448 * 1024
JOB_FILES_BYTES = 64 * 1024  # job, record and log files, the record's line


def space_needed(out_dir: Path, jobs: Sequence[BenchmarkJob]) -> tuple[int, str]:
    """(bytes, what for) the rest of the run needs in ``out_dir``: the jobs without an ok
    record, then the report."""
    out_dir = Path(out_dir)
    records = latest_records(read_records(out_dir / RESULTS_FILE))
    done = {r.key for r in records if r.status == OK}
    left = [job for job in jobs if job.key() not in done]
    frames = max((len(job.images) for job in jobs), default=0)
    # The largest job so far, never below the estimate from the frames: the job that failed on
    # the full disk left no detections file.
    per_job = max([JOB_FILES_BYTES + DETECTIONS_BYTES_PER_FRAME * frames,
                   *(_job_bytes(out_dir, record) for record in records)])
    report = report_size_estimate(out_dir, frames)
    return len(left) * per_job + report, f"{len(left)} job(s) and the report"


def stop_if_disk_failed(record: BenchmarkRecord, out_dir: Path) -> None:
    """Raise :class:`WriteFailed` when ``record`` failed writing into ``out_dir`` because the
    disk is full, over quota or read-only: every later job would fail the same way, after
    minutes of measuring. (The worker's reason quotes the errno, ``[Errno 28]``, and the folder;
    a crashed worker's reason ends with its log's path, which is no evidence, so it is cut.)"""
    reason = (record.error or "").split(" (full log: ")[0]
    code = errno_in(reason)
    if record.ok or code not in ALWAYS_WRITES or str(out_dir) not in reason:
        return
    name = f"{record.alias or record.job.get('model', '?')} {record.runtime} {record.precision}"
    raise WriteFailed(Path(out_dir), code, f"the results of {name}")


def _job_bytes(out_dir: Path, record: BenchmarkRecord) -> int:
    slug = record.key.replace("/", "_").replace("#", "_")  # BenchmarkJob.slug()
    files = (out_dir / "detections" / f"{slug}.json", out_dir / "logs" / f"{slug}.log",
             out_dir / "jobs" / f"{slug}.json", out_dir / "jobs" / f"{slug}.record.json")
    return sum(path.stat().st_size for path in files if path.is_file()) + len(str(record.to_dict()))
