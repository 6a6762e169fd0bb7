"""The replay as a command, torch-free: the options every replay takes and :func:`run_replay`
over a deployment bundle. ``maskbench rig`` (:mod:`.cli`, the full install: it can build the
bundle from a zoo model) and ``python -m maskbench.deploy BUNDLE --rig`` (the robot's lean
install) both run it; ``rig.json`` holds one :class:`~maskbench.rig.replay.RigResult` per
configuration and the capacity found with ``--find-max``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..utils.errors import MaskbenchError
from ..utils.names import milliseconds

RESULTS_FILE = "rig.json"


def add_replay_options(rig) -> None:
    """Source, configurations, queue policy, deadline, duration, capacity search, output."""
    rig.add_argument("source", nargs="?", type=Path, default=None,
                     help="a ROS bag (.bag, .mcap, .db3, rosbag2 folder, or a folder of split .bag files), a "
                          "nuScenes-style folder, or an image folder with --cameras N --fps F (default: the embedded "
                          "nuScenes frames as the three front cameras at 12 Hz)")
    rig.add_argument("--topics", type=lambda t: [s for s in t.split(",") if s], default=None,
                     help="the bag's image topics, comma-separated (default: every image topic, one camera each)")
    rig.add_argument("--cameras", default=None,
                     help="a nuScenes folder's cameras (comma-separated names), or N cameras for an image folder")
    rig.add_argument("--fps", type=float, default=None, help="an image folder's rate per camera (Hz)")
    rig.add_argument("--config", default="sync",
                     help="sync, streams:N (streams: the throughput hint chooses N), batch, a comma-separated list, "
                          "or all (default: sync)")
    rig.add_argument("--queue", choices=("latest", "all"), default="latest",
                     help="per camera: keep the newest frame and drop the overtaken (latest), or keep all (default: "
                          "latest)")
    rig.add_argument("--deadline", type=milliseconds, default=250.0, metavar="MS",
                     help="a frame's detections later than this after its arrival are a miss (default: 250)")
    rig.add_argument("--duration", type=float, default=20.0, metavar="S",
                     help="seconds of replay (with --find-max: the longest trial) (default: 20)")
    rig.add_argument("--window", type=float, default=None, metavar="S",
                     help="window of the per-window figures (default: 60 s from 5 minutes on, else a tenth of the "
                          "duration, at least 1 s)")
    rig.add_argument("--find-max", choices=("cameras", "fps"), default=None,
                     help="search the largest number of cameras (or rate) that holds --deadline with --max-miss")
    rig.add_argument("--max-miss", type=float, default=0.01, metavar="P",
                     help="largest share of missed frames that still holds (default: 0.01)")
    rig.add_argument("--limit", type=float, default=32, help="--find-max's upper limit (default: 32)")
    rig.add_argument("--out", type=Path, default=Path("rig-results"),
                     help="folder for rig.json and results.jsonl (default: rig-results)")
    rig.add_argument("--threads", type=int, default=None,  # the shared flag's text (cli/args.py THREADS_HELP)
                     help="CPU threads of the runtime (default: torch's, one per core); a bundle's own by default")


def check_options(args) -> list:
    """The configurations, once the numbers are checked (one line each, before any work)."""
    from .configs import parse_config

    if not 0 <= args.max_miss < 1:
        raise MaskbenchError(f"--max-miss {args.max_miss}: give a share between 0 and 1 (0.01 = 1 %)")
    if args.duration <= 0 or args.deadline <= 0:
        raise MaskbenchError("--duration and --deadline must be positive")
    return [parse_config(c) for c in _config_names(args.config)]


def run_replay(args, streams, bundle: Path, batch_bundle: Path | None = None) -> int:
    """Every configuration of ``args`` over ``streams`` through ``bundle`` (``batch``: through
    ``batch_bundle``, or ``bundle`` when its graph takes a static batch); ``rig.json`` in ``args.out``."""
    from .records import append_records, capacity_record, replay_record
    from .replay import ReplayOptions

    configs = check_options(args)
    window = args.window or (60.0 if args.duration >= 300 else max(1.0, args.duration / 10))
    options = ReplayOptions(args.duration, args.queue, args.deadline, window)
    results, capacities = [], []
    context = run_context(args, streams, bundle)
    records = []
    for config in configs:
        chosen, why_not = bundle_for(config, bundle, batch_bundle)
        if chosen is None:
            print(f"{config}: skipped ({why_not})")
            continue
        if args.find_max:
            capacity = find_max(args, streams, chosen, config, options)
            capacities.append({"config": str(config), **capacity.to_dict()})
            records.append(capacity_record(context, str(config), capacity))
            print(f"{config}: holds {capacity.capacity:g} {capacity.unit} within {args.deadline:g} ms "
                  f"(misses <= {args.max_miss:.1%}){'' if capacity.confirmed else ' (nothing held)'}")
        else:
            result = replay_once(streams, chosen, config, options, args.threads)
            results.append(result.to_dict())
            records.append(replay_record(context, str(config), result))
            print(summary_line(str(config), result))
    write_results(args.out, {"source": getattr(streams, "origin", "embedded"), "cameras": list(streams.cameras),
                             "bundle": str(bundle), "model": context.model, "machine": context.machine,
                             "results": results, "capacity": capacities})
    print(f"results: {args.out / RESULTS_FILE}, {len(records)} record(s) in {append_records(args.out, records)}")
    return 0


def bundle_for(config, bundle: Path, batch_bundle: Path | None) -> tuple[Path | None, str]:
    """The bundle that runs ``config`` (a static-batch graph for ``batch``, a single-image one
    for the others), or None and why it is skipped."""
    from .configs import ConfigKind

    batched = json.loads((bundle / "manifest.json").read_text()).get("batch", 1) > 1
    if config.kind is ConfigKind.BATCH:
        if batch_bundle is not None:
            return batch_bundle, ""
        return (bundle, "") if batched else (None, "the bundle's graph takes one image; export a static-batch "
                                                   "bundle with maskbench export --bundle DIR --batch N")
    if batched:
        return None, "the bundle's graph takes a static batch: run it with --config batch"
    return bundle, ""


def run_context(args, streams, bundle: Path):
    """What the run's records share (:class:`maskbench.rig.records.RunContext`)."""
    from ..utils.machine import describe_environment
    from .records import RunContext

    rates = list(streams.rates_hz.values())
    settings = {"duration_s": args.duration, "window_s": args.window, "threads": args.threads,
                "limit": args.limit if args.find_max else None, "cameras": list(streams.cameras)}
    return RunContext(bundle_summary(bundle), describe_environment(), str(getattr(streams, "origin", "embedded")),
                      len(streams.cameras), round(min(rates), 6) if rates else 0.0, args.deadline, args.max_miss,
                      args.queue, settings)


def bundle_summary(bundle: Path) -> dict:
    """What ran: the manifest's model, runtime and precision."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    keys = ("model", "alias", "weights", "mode", "input_size", "runtime", "runtime_version", "precision", "threads")
    return {key: manifest.get(key) for key in keys}


def _config_names(text: str) -> list[str]:
    if text.strip() == "all":
        return ["sync", "streams", "batch"]
    return [c for c in text.split(",") if c.strip()]


def replay_once(streams, bundle: Path, config, options, threads: int | None, cameras: int | None = None,
                rate_factor: float | None = None):
    from .bundle import bundle_executor
    from .replay import replay

    if cameras is not None:
        streams = streams.with_cameras(cameras)
    if rate_factor is not None:
        streams = streams.scaled_rate(rate_factor)
    return replay(streams.frames(), bundle_executor(bundle, config, threads), options, cameras=list(streams.cameras))


def find_max(args, streams, bundle: Path, config, options):
    from dataclasses import replace

    from .capacity import LoadUnit, Trial, find_capacity
    from .metrics import StabilityRule

    trial_options = replace(options, stop_when_stable=StabilityRule(), min_duration_s=3 * options.window_s)
    base_hz = min(streams.rates_hz.values())

    def trial(load: float) -> Trial:
        if args.find_max == "cameras":
            result = replay_once(streams, bundle, config, trial_options, args.threads, cameras=int(load))
        else:
            result = replay_once(streams, bundle, config, trial_options, args.threads, rate_factor=load / base_hz)
        verdict = Trial.of(load, result, args.max_miss)
        print(f"  {config} {load:g} {args.find_max}: misses {result.miss_share:.1%}, "
              f"{'holds' if verdict.holds else 'fails'}{'' if result.stable else ' (windows unstable)'}",
              file=sys.stderr)
        return verdict

    unit = LoadUnit(args.find_max)
    return find_capacity(trial, unit=unit, step=1.0, limit=args.limit)


def summary_line(config: str, result) -> str:
    o = result.overall
    latency = f"p50 {o.latency.p50_ms:.0f} / p99 {o.latency.p99_ms:.0f} ms" if o.latency else "no frame processed"
    cpu = f"{result.cpu_s_per_frame:.3f} CPU-s/frame" if result.cpu_s_per_frame is not None else "-"
    energy = ", ".join(f"{label} {j:.2f} J/frame" for label, j in result.energy_j_per_frame.items()) or \
        "no energy counter"
    return (f"{config}: {o.processed}/{o.offered} frames ({o.dropped} dropped, {o.decode_failed} undecodable), "
            f"{o.processed_hz:.1f}/s, {latency}, misses {o.miss_share:.1%}, {cpu}, {energy}")


def write_results(out: Path, data: dict) -> None:
    from ..utils.files import atomic_open, writing_in

    with writing_in(out, RESULTS_FILE):
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / RESULTS_FILE) as f:
            json.dump(data, f, indent=1)


# ----------------------------------------------------------------------------- sources
def open_streams(args):
    """The camera streams the options name (:mod:`maskbench.rig.sources`)."""
    count = names = None
    if args.cameras:
        if args.cameras.isdigit():
            count = int(args.cameras)
        else:
            names = [c for c in args.cameras.split(",") if c]
    from .sources import open_source

    return open_source(args.source, topics=args.topics, cameras=names, camera_count=count, fps=args.fps)
