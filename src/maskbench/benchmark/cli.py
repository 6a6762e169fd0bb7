"""``maskbench benchmark``: plan the jobs from the command line, run them, write the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import args as cli_args

DEFAULT_OUT = Path("out/benchmark")


def add_commands(sub) -> None:
    bench = sub.add_parser(
        "benchmark", help="time models x runtimes (each in its own process) and write the report",
        description="Defaults: the study's five models, the best runtime installed here, the embedded nuScenes "
                    "frames of the front/left/right cameras, static 1344x800, calibrated random weights.")
    cli_args.add_model_args(bench, multiple=True, default_text="the study's five")
    cli_args.add_runtime_args(bench, multiple=True, default_text="the best one installed here")
    cli_args.add_precision_args(bench, multiple=True, alias="--precision", machine_default=True)
    cli_args.add_weights_args(bench)
    cli_args.add_input_args(bench, cameras_default="CAM_FRONT,CAM_FRONT_LEFT,CAM_FRONT_RIGHT of a nuScenes folder")
    cli_args.add_resize_args(bench)
    bench.add_argument("--device", default=None, help="cpu or cuda:0 (default: the runtime's choice)")
    cli_args.add_threads_args(bench)
    bench.add_argument("--warmup", type=int, default=2, help="untimed calls after the cold first one")
    bench.add_argument("--repeat", type=int, default=3, help="timed passes over all frames")
    bench.add_argument("--stages", action="store_true",
                       help="also time the network's stages (backbone+FPN, RPN, box head, mask head): torch runtimes "
                            "by calling them one by one, OpenVINO/ONNX Runtime from their per-node profilers")
    bench.add_argument("--fidelity", action="store_true",
                       help="also compare each runtime/precision with fp32 eager PyTorch on the same frames: FPN "
                            "feature cosine and relative error, detections matched, mask IoU (with --coco: AP drop)")
    bench.add_argument("--coco", type=Path, default=None,
                       help="COCO annotation file: also measure box/mask AP of each model x runtime x precision")
    bench.add_argument("--coco-images", type=Path, default=None, help="image folder of --coco (default: beside it)")
    bench.add_argument("--coco-max-images", type=int, default=None, help="score only the first N images")
    bench.add_argument("--timeout", type=float, default=3600.0, help="seconds one model x runtime may take")
    bench.add_argument("--no-resume", action="store_true", help="measure again jobs already in results.jsonl")
    bench.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=None,
                       help="prepare the jobs each in its own process, then time them in alternating rounds (A, B, "
                            "A, B, ...), one at a time, so the machine's drift falls on all alike; --no-interleave: "
                            "each job in a block of its own (default: interleave when two or more jobs)")
    bench.add_argument("--max-resident", type=_at_least_one, default=None, metavar="N",
                       help="at most N prepared jobs held in memory at once when interleaving: a larger run is split "
                            "into groups, compared directly only within a group (default: what free memory holds)")
    cli_args.add_pair_args(bench)
    cli_args.add_output_args(bench, default=DEFAULT_OUT, one_writer=True)
    bench.set_defaults(run=benchmark_command)


def benchmark_command(args) -> int:
    from ..utils.files import space_estimate
    from .plan import JobSpec, default_runtimes, plan_jobs, resolve_models
    from .runner import run_benchmark
    from .space import space_needed

    models = resolve_models(args.models)
    runtimes = args.runtimes or default_runtimes()
    precisions, fidelity_precisions = _precisions(args.precisions, runtimes)
    spec = JobSpec(
        images=args.images, cameras=args.cameras, mode=cli_args.resize_mode(args), input_size=args.input_size,
        weights=args.weights, seed=args.seed, device=args.device, threads=args.threads, warmup=args.warmup,
        repeat=args.repeat, stages=args.stages, coco=args.coco, coco_images=args.coco_images,
        coco_max_images=args.coco_max_images, fidelity=args.fidelity, fidelity_precisions=fidelity_precisions,
    )
    jobs = plan_jobs(models, runtimes, precisions, spec)
    for line in jobs.left_out:  # refused before any worker starts (see benchmark/preflight.py)
        print(f"left out: {line}")
    print(f"benchmark: {len(models)} model(s) x {len(runtimes)} runtime(s) x {len(precisions)} precision(s) "
          f"= {len(jobs)} job(s) on {len(jobs[0].images)} frame(s); results: {args.out / 'results.jsonl'}")
    # A full or read-only --out: one line with the space the rest of the run needs.
    with space_estimate(args.out, lambda: space_needed(args.out, jobs),
                        kept=f"the finished jobs are kept in {args.out / 'results.jsonl'}: the same command "
                             "resumes"):
        _print_peaks(jobs)  # measured before any worker starts (cached per machine): each row's share of it
        interleave = args.interleave if args.interleave is not None else len(jobs) > 1
        summary = run_benchmark(jobs, args.out, timeout_s=args.timeout, resume=not args.no_resume,
                                on_record=_print_record, interleave=interleave, max_resident=args.max_resident)
        if summary.resumed:
            print(f"resumed: {len(summary.resumed)} job(s) already measured in {summary.results_file}")
        records = summary.records
        _write_report(records, args)
    return 0 if any(r.ok for r in records) else 1


def _precisions(given: list[str] | None, runtimes: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """(the precisions, those measured with fidelity regardless of --fidelity): the given ones,
    else fp32 plus this machine's fastest native reduced precision (benchmark/precision_choice.py)."""
    from .precision_choice import REDUCED_RUNTIMES, Capabilities, choose_precisions

    if given:
        return list(given), ()
    reads = any(runtime in REDUCED_RUNTIMES for runtime in runtimes)  # else no need to start OpenVINO
    choice = choose_precisions(runtimes, Capabilities.read() if reads else Capabilities((), frozenset(), False))
    fidelity = f"; --fidelity on for {', '.join(choice.reduced)}" if choice.reduced else ""
    print(f"precisions: {', '.join(choice.precisions)} (default here: {choice.reason}{fidelity})")
    return list(choice.precisions), choice.reduced


def _print_peaks(jobs) -> None:
    from .run_peaks import peaks_for_jobs

    for line in peaks_for_jobs(jobs):
        print(line, flush=True)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of jobs of at least 1")
    return value


def _print_record(record) -> None:
    from ..results.machine_load import under_load_reason

    if record.ok:
        stats = record.latency()
        fidelity = (f", feature cosine {record.feature_cosine:.4f}, mean mask IoU {record.mean_mask_iou:.3f}"
                    if record.feature_cosine is not None else "")
        load = under_load_reason(record)
        print(f"  {record.alias:<11} {record.runtime} {record.precision}: {stats.mean_ms:.0f} ms mean "
              f"(p95 {stats.p95_ms:.0f}), steady RSS {record.steady_rss_mb:.0f} MiB{fidelity}"
              + (f"; measured under load: {load}" if load else ""), flush=True)
    else:
        print(f"  {record.alias or record.job.get('model')} {record.runtime} {record.precision}: "
              f"{record.status}: {record.error}", flush=True)


def _write_report(records, args) -> None:
    from ..report.benchmark_report import write_report
    from ..utils.names import DEFAULT_PAIR

    files = write_report(records, args.out, overlay_pair=args.pair or DEFAULT_PAIR)
    print(f"report: {getattr(files, 'html', args.out / 'report.html')}")
