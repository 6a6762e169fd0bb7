"""``maskbench report`` and ``maskbench recommend``: read a benchmark's ``results.jsonl`` again,
render the report or pick a model under a budget (added to the main parser by
:func:`add_commands`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import args as cli_args
from ..cli.keys import add_sign_args, check_sign_args
from ..utils.errors import MaskbenchError
from ..utils.names import milliseconds


def _budget(parser_name: str):
    """A type parsing ``6GB`` / ``120ms`` with :mod:`maskbench.report.recommend` (imported when the flag
    is given, so building the parser does not load numpy)."""

    def parse_argument(text: str) -> float:
        from . import recommend as recommend

        try:
            return getattr(recommend, parser_name)(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse_argument.__name__ = parser_name
    return parse_argument


def add_commands(sub) -> None:
    report = sub.add_parser("report", help="render the benchmark report again from results.jsonl")
    cli_args.add_results_args(report)
    cli_args.add_output_args(report, default_text="the results folder")
    report.add_argument("--wait", action="store_true", help=cli_args.WAIT_HELP)  # the folder is held while writing
    cli_args.add_pair_args(report)
    cli_args.add_metric_args(report)
    report.set_defaults(run=report_command)

    pick = sub.add_parser("recommend", help="the best model within a GPU memory / memory / latency budget")
    cli_args.add_results_args(pick)
    pick.add_argument("--max-gpu-memory", type=_budget("parse_memory_mb"), default=None, help="e.g. 6GB")
    pick.add_argument("--max-memory", type=_budget("parse_memory_mb"), default=None,
                      help="host memory (steady RSS), e.g. 8GB")
    pick.add_argument("--max-latency", type=_budget("parse_latency_ms"), default=None,
                      help="end-to-end mean per image, e.g. 120ms or 1.2s")
    cli_args.add_metric_args(pick)
    pick.add_argument("--min-mask-iou", type=float, default=None,
                      help="fidelity floor: mean mask IoU against fp32 eager (records from benchmark --fidelity; "
                           "for a rig pick, those given with the rig records), e.g. 0.9")
    pick.add_argument("--max-ap-drop", type=float, default=None,
                      help="fidelity floor: mask AP points lost to fp32 eager (benchmark --fidelity --coco; for a rig "
                           "pick, as --min-mask-iou), e.g. 1.0")
    rig = pick.add_argument_group("camera rig (picks from maskbench rig records; all three together)")
    rig.add_argument("--cameras", type=int, default=None, metavar="N", help="cameras the robot runs at once")
    rig.add_argument("--fps", type=float, default=None, help="rate per camera (Hz)")
    rig.add_argument("--deadline", type=milliseconds, default=None, metavar="MS",
                     help="latency from a frame's arrival to its detections, e.g. 150ms")
    rig.add_argument("--max-power", type=float, default=None, metavar="W",
                     help="average power budget in watts (records with measured energy only)")
    rig.add_argument("--max-miss", type=float, default=None, metavar="P",
                     help="largest share of missed frames (default: each rig run's own --max-miss)")
    pick.add_argument("--bundle", type=Path, default=None, metavar="DIR",
                      help="also export the pick as a torch-free deployment bundle (docs/deploy.md), its measured "
                           "latency and fidelity in the manifest")
    add_sign_args(pick)
    pick.set_defaults(run=recommend_command)


def load_results(paths: Path | list[Path], *, rig_only: bool = False, benchmark_only: bool = False):
    """The first results file, the newest benchmark record of each job and the newest rig record
    of each run, over every results.jsonl given (or the one inside a folder), in the order given:
    files made on several machines merge (their records keep their machine descriptions).
    ``rig_only``/``benchmark_only``: the caller needs that kind (a rig pick, a benchmark pick); a
    report takes either."""
    from ..results.records import RESULTS_FILE, latest_records, read_records
    from ..results.rig_records import latest_rig_records, read_rig_records

    files, records, rig_records = [], [], []
    for path in [paths] if isinstance(paths, Path) else paths:
        file = path / RESULTS_FILE if path.is_dir() else path
        if not file.exists():
            raise MaskbenchError(f"{file}: no such results file; run `maskbench benchmark --out DIR` (or "
                                 "`maskbench rig --out DIR`) first")
        files.append(file)
        records += latest_records(read_records(file))
        rig_records += latest_rig_records(read_rig_records(file))
    if rig_only and not rig_records:
        raise MaskbenchError(f"{', '.join(map(str, files))}: no rig record in it; run `maskbench rig --out DIR` "
                             "(e.g. with --find-max cameras) first")
    if not records and not rig_only and (benchmark_only or not rig_records):
        if rig_records:
            raise MaskbenchError(f"{', '.join(map(str, files))}: only rig records; give --cameras, --fps and "
                                 "--deadline to pick from them")
        raise MaskbenchError(f"{', '.join(map(str, files))}: no benchmark record in it; run `maskbench benchmark` "
                             "first")
    return files[0], records, rig_records


def report_command(args) -> int:
    from ..utils.files import space_estimate
    from ..utils.names import DEFAULT_PAIR
    from ..utils.out_lock import hold_output_folder
    from .benchmark_report import report_size_estimate, write_report

    # One writer per folder (as benchmark's): two reports, or a report into a running benchmark's
    # folder, would interleave their files; the second stops with one line, or waits (--wait).
    first = args.results[0]
    out = args.out or (first if first.is_dir() else first.parent)
    with hold_output_folder(out, wait=args.wait):
        file, records, rig_records = load_results(args.results)
        frames = max((len(record.job.get("images", ())) for record in records), default=0)
        with space_estimate(out, lambda: (report_size_estimate(out, frames), "the report")):
            files = write_report(records, out, overlay_pair=args.pair or DEFAULT_PAIR, results_dir=file.parent,
                                 metric=args.metric, rig_records=rig_records)
    for note in files.notes:
        print(note)
    print(f"report: {files.html} (and {files.markdown.name}, {files.csv.name}, {files.json.name}, "
          f"{files.pareto_png.name}, {len(files.overlays)} overlay(s)"
          + (f", {len(files.load_plots)} rig load plot(s)" if files.load_plots else "")
          + f") from {len(records)} benchmark record(s)" + (f" and {len(rig_records)} rig record(s)" if rig_records
                                                             else ""))
    return 0


def recommend_command(args) -> int:
    """Exit status 0 with a pick, 1 when nothing fits (scripts can test it)."""
    if rig_demand(args) is not None:
        return rig_recommend_command(args)
    from .recommend import recommend

    check_sign_args(args)
    _, records, _ = load_results(args.results, benchmark_only=True)
    result = recommend(records, max_gpu_memory_mb=args.max_gpu_memory, max_memory_mb=args.max_memory,
                       max_latency_ms=args.max_latency, metric=args.metric, min_mask_iou=args.min_mask_iou,
                       max_ap_drop=args.max_ap_drop)
    print(result.describe())
    if result.pick and args.bundle is not None:
        from ..benchmark.job_model import export_job_bundle
        from ..results.records import BenchmarkJob

        record = result.pick
        latency = record.latency()
        fidelity = {name: getattr(record, name) for name in FIDELITY_FIELDS if getattr(record, name) is not None}
        path = export_job_bundle(BenchmarkJob.from_dict(record.job), args.bundle,
                                 latency.mean_ms if latency else None, fidelity or None, args.sign)
        print(f"bundle: {path} (run it with python -m maskbench.deploy {args.bundle})")
    return 0 if result.pick else 1


# What a bundle's manifest keeps of the pick's fidelity (records from benchmark --fidelity).
FIDELITY_FIELDS = ("feature_cosine", "feature_rel_error", "fidelity_matched", "fidelity_reference_count",
                   "mean_mask_iou", "area_weighted_mask_iou", "fidelity_note", "ap_drop")


def rig_demand(args):
    """The camera rig asked for with --cameras/--fps/--deadline, or None (the benchmark's recommend)."""
    given = {"--cameras": args.cameras, "--fps": args.fps, "--deadline": args.deadline}
    extra = {"--max-power": args.max_power, "--max-miss": args.max_miss}
    if all(v is None for v in given.values()):
        if any(v is not None for v in extra.values()):
            raise MaskbenchError(f"{', '.join(k for k, v in extra.items() if v is not None)} picks from rig records: "
                                 "give --cameras, --fps and --deadline too")
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise MaskbenchError(f"a camera rig needs --cameras, --fps and --deadline together; add {', '.join(missing)}")
    if args.cameras < 1 or args.fps <= 0:
        raise MaskbenchError("--cameras must be at least 1 and --fps positive")
    if args.max_miss is not None and not 0 <= args.max_miss < 1:
        raise MaskbenchError(f"--max-miss {args.max_miss}: give a share between 0 and 1 (0.01 = 1 %)")
    from .rig_recommend import RigDemand

    return RigDemand(args.cameras, args.fps, args.deadline, args.max_power, args.max_miss, args.min_mask_iou,
                     args.max_ap_drop)


def rig_recommend_command(args) -> int:
    """Exit status 0 with a pick, 1 when nothing holds the rig."""
    from .rig_recommend import precision_costs, recommend_rig

    if args.bundle is not None:
        raise MaskbenchError("--bundle exports a benchmark pick; a rig pick's bundle is the one its rig run replayed "
                             "(maskbench rig --from-bundle DIR, or the cached one it names)")
    _, records, rig_records = load_results(args.results, rig_only=True)
    result = recommend_rig(rig_records, rig_demand(args), metric=args.metric, costs=precision_costs(records))
    print(result.describe())
    return 0 if result.pick else 1
