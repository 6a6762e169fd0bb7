"""The ``maskbench`` command: thin argument parsing over the library functions."""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

from ..utils.errors import MaskbenchError
from . import args as cli_args

# What the `runtimes` extra adds to the deploy-only core (pyproject.toml): a command that needs one
# of these on a deploy-only install gets one line naming the full install.
FULL_INSTALL_MODULES = frozenset({"torch", "torchvision", "tqdm", "matplotlib", "faster_coco_eval"})


def build_parser() -> cli_args.Parser:
    """Every command's parser; imports neither torch nor numpy (the commands import what they
    need when they run), so ``maskbench --help`` is fast."""
    parser = cli_args.Parser(prog="maskbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    zoo = sub.add_parser("zoo", help="list the models, or show one")
    zoo.add_argument("name", nargs="?", help="model name or alias")
    zoo.add_argument("--markdown", action="store_true", help="print the table as Markdown")

    predict = sub.add_parser("predict", help="run a model over images; write COCO results and overlays")
    cli_args.add_model_args(predict, default="convnext-t")
    cli_args.add_weights_args(predict)
    cli_args.add_input_args(predict)
    cli_args.add_resize_args(predict)
    cli_args.add_runtime_args(predict, default_text="eager PyTorch on the CPU; with --precision other than fp32: torch")
    cli_args.add_precision_args(predict)
    cli_args.add_threads_args(predict)
    cli_args.add_engine_args(predict)
    cli_args.add_output_args(predict, default=Path("out/predict"), one_writer=True)
    predict.add_argument("--draw-threshold", type=float, default=0.3, help="score below which overlays skip")
    predict.add_argument("--no-overlays", action="store_true")

    from ..runtimes.cli import add_commands  # export, check-conversion, runtimes

    add_commands(sub)
    from ..report.cli import add_commands as add_report_commands  # report, recommend

    add_report_commands(sub)
    from ..evaluation.cli import add_commands as add_evaluation_commands  # evaluate

    add_evaluation_commands(sub)
    from ..benchmark.cli import add_commands as add_benchmark_commands

    add_benchmark_commands(sub)
    from ..rig.cli import add_parser as add_rig_command  # rig

    add_rig_command(sub)
    from .keys import add_commands as add_keys_commands  # keys new

    add_keys_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _output_folder_lock(args, argv if argv is not None else sys.argv[1:]):
            if args.command == "zoo":
                return _zoo(args)
            if args.command == "predict":
                return _predict(args)
            if hasattr(args, "run"):  # commands added by add_commands
                return args.run(args)
    except MaskbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # a deploy-only install (no torch): the full one is one line
        if err.name not in FULL_INSTALL_MODULES:
            raise
        print(f"error: `maskbench {args.command}` needs the full install ('{err.name}' is not installed; this "
              f"looks like the deploy-only install): pip install \"maskbench[runtimes]\"; a bundle runs with "
              "`python -m maskbench.deploy`", file=sys.stderr)
        return 2
    except OSError as err:  # a write error no writer translated (e.g. a library writing on its own)
        from ..utils.files import write_failure

        failure = write_failure(err, getattr(args, "out", None))
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return 2
    return 1


def _output_folder_lock(args, argv: list[str]) -> contextlib.AbstractContextManager:
    """The commands that write a folder (``add_output_args(one_writer=True)``) hold it for their
    whole run, taken before any other work, so a second run on it stops at once (or waits)."""
    if not getattr(args, "one_writer", False):
        return contextlib.nullcontext()
    from ..utils.out_lock import hold_output_folder

    return hold_output_folder(args.out, wait=args.wait, command=shlex.join(["maskbench", *argv]))


def _zoo(args) -> int:
    from ..zoo import get_spec
    from ..zoo.views import describe, markdown_table, text_table

    if args.name:
        print(describe(get_spec(args.name)))
    else:
        print(markdown_table() if args.markdown else text_table())
    return 0


def _predict(args) -> int:
    from ..distributed.cli import check_engine

    mode = cli_args.resize_mode(args)
    if check_engine(args):
        from ..distributed.cli import predict_command

        return predict_command(args, mode)
    from ..data.sources import embedded_nuscenes
    from ..distributed.local_journal import ShardJournal
    from ..predict.predictor import run_predict

    summary = run_predict(
        args.model, args.weights, args.images or embedded_nuscenes(), args.out, cameras=args.cameras,
        mode=mode, input_size=args.input_size, overlays=not args.no_overlays, draw_threshold=args.draw_threshold,
        seed=args.seed, runtime=args.runtime, threads=args.threads, precision=args.precision,
        journal=ShardJournal(args.out),
    )
    kept = f", {summary.kept} kept from an earlier run" if summary.kept else ""
    print(f"{summary.processed} image(s) predicted{kept}, {len(summary.errors)} skipped; weights: {summary.weights}")
    print(f"results: {summary.out_dir / 'results.json'} (COCO format), images: {summary.out_dir / 'images.json'}")
    return 0 if summary.processed or summary.kept else 1


if __name__ == "__main__":
    sys.exit(main())
