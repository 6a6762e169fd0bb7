"""The argument groups the ``maskbench`` commands share, so that a flag means the same thing (type,
choices, default semantics, help) in every command that has it.

- One value, a singular flag: ``--model r50``, ``--runtime openvino``, ``--precision int8``.
- Several values, a plural flag with one comma-separated argument, in every command that takes a
  list: ``--models r50,r101``, ``--runtimes onnxruntime,openvino``, ``--precisions fp32,int8``,
  ``--cameras CAM_FRONT,CAM_BACK``, ``--pair convnext-t,r101``. The singular spelling where a
  command used to take the list under it (benchmark's ``--precision``, check-conversion's
  ``--runtime``) is still accepted there, as a hidden alias of the plural flag.
- Names are checked by the parser (type functions over :mod:`maskbench.utils.names`): an unknown model,
  runtime or precision is a one-line error (exit status 2) before anything is loaded.

This module imports only the standard library and :mod:`maskbench.utils.names`, so building the parser
(``maskbench --help``) loads neither torch nor numpy; ``tests/test_cli_args.py`` checks it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from ..runtimes.registry import RUNTIMES, export_targets  # names and capabilities only: no torch, no backend imported
from ..utils.names import (
    ALL_MODELS,
    DEFAULT_PAIR,
    KEEP_RATIO_SCALE,
    METRICS,
    PRECISIONS,
    RTMDET_INPUT_SIZE,
    STUDY_INPUT_SIZE,
    ResizeMode,
)
from ..zoo import MODEL_SETS, MODELS

# Short alias -> zoo name, in the zoo's order (the zoo is plain data: no model code imported).
MODEL_ALIASES: dict[str, str] = {spec.alias: spec.name for spec in MODELS}
MODEL_NAMES: frozenset[str] = frozenset(MODEL_ALIASES) | frozenset(MODEL_ALIASES.values())  # what get_spec takes
MODEL_SET_NAMES: tuple[str, ...] = tuple(MODEL_SETS)  # study, each family, all
RUNTIME_NAMES: tuple[str, ...] = tuple(RUNTIMES)  # the registry's order
EXPORT_TARGETS = export_targets()


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``maskbench CMD: error: ...`` (exit
    status 2), like the errors the commands themselves print; ``--help`` shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------- value types
def _or(names: Sequence[str]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def model_name(text: str) -> str:
    """A zoo config name or alias, as given (``zoo.get_spec`` takes both)."""
    name = text.strip()
    if name not in MODEL_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown model '{name}'; run `maskbench zoo` to list them (aliases: {', '.join(MODEL_ALIASES)})")
    return name


def _name_in(kind: str, names: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        name = text.strip()
        if name not in names:
            raise argparse.ArgumentTypeError(f"unknown {kind} '{name}'; choose one of: {', '.join(names)}")
        return name

    parse.__name__ = kind.replace(" ", "_")
    return parse


runtime_name = _name_in("runtime", RUNTIME_NAMES)
export_target = _name_in("export runtime", EXPORT_TARGETS)
precision_name = _name_in("precision", PRECISIONS)


def comma_list(item: Callable[[str], str]) -> Callable[[str], list]:
    """The type of every list flag: ``a,b,c`` -> ``[item(a), item(b), item(c)]`` (blanks dropped;
    an empty list is an error)."""

    def parse(text: str) -> list:
        values = [item(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected one or more comma-separated names, got '{text}'")
        return values

    parse.__name__ = f"{getattr(item, '__name__', 'value')}_list"
    return parse


def model_list(text: str) -> list[str]:
    """``benchmark --models``: zoo names/aliases and named sets (``study``, ``rtmdet-ins``, ...), in
    the order given, each model once; ``all`` stands alone."""
    names = comma_list(str)(text)
    if any(name.lower() == ALL_MODELS for name in names) and len(names) > 1:
        raise argparse.ArgumentTypeError(f"'{ALL_MODELS}' stands alone (every zoo model), got '{text}'")
    models: list[str] = []
    for name in names:
        if name.lower() in MODEL_SETS:
            expanded = MODEL_SETS[name.lower()]
        else:
            given = model_name(name)
            expanded = (MODEL_ALIASES.get(given, given),)  # an alias as its config name, so each model once
        models += [model for model in expanded if model not in models]
    return models


runtime_list = comma_list(runtime_name)
precision_list = comma_list(precision_name)
camera_list = comma_list(str)


def model_pair(text: str) -> tuple[str, str]:
    names = comma_list(model_name)(text)
    if len(names) != 2:
        raise argparse.ArgumentTypeError(f"two models, e.g. {','.join(DEFAULT_PAIR)}; got '{text}'")
    return names[0], names[1]


def image_size(text: str) -> tuple[int, int]:
    """``1344x800`` -> ``(1344, 800)`` (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1344x800, got '{text}'") from None
    return width, height


def resize_mode(args: argparse.Namespace) -> ResizeMode:
    """The resize mode ``--keep-ratio`` asks for."""
    return ResizeMode.KEEP_RATIO if args.keep_ratio else ResizeMode.STRETCH


# ----------------------------------------------------------------------------- help texts
# Each shared flag's help starts with its text here, in every command (a command may add what
# the flag does there, and the default); tests/test_cli_args.py checks it.
MODEL_HELP = f"zoo name or alias: {', '.join(MODEL_ALIASES)} (see `maskbench zoo`)"
MODELS_HELP = (f"comma-separated zoo names or aliases (as for --model) and named sets: {', '.join(MODEL_SET_NAMES)} "
               f"('{ALL_MODELS}' stands alone)")
WEIGHTS_HELP = ("'random' (untrained, deterministic, calibrated on the input frames: for timing, its detections "
                "and AP are meaningless), 'official' (the zoo's checkpoint, downloaded once) or a .pth path")
SEED_HELP = "seed of random weights"
IMAGES_HELP = "image file, folder or nuScenes folder"
CAMERAS_HELP = "nuScenes cameras, comma-separated, e.g. CAM_FRONT,CAM_BACK"
INPUT_SIZE_HELP = (f"stretch size WxH (default {_wxh(STUDY_INPUT_SIZE)} for Mask R-CNN, "
                   f"{_wxh(RTMDET_INPUT_SIZE)} for RTMDet-Ins) or, with --keep-ratio, the long x short edge limits "
                   f"(default {_wxh(KEEP_RATIO_SCALE)}; RTMDet-Ins: {_wxh(RTMDET_INPUT_SIZE)}, padded to it with 114 "
                   "as its config does)")
KEEP_RATIO_HELP = ("MMDetection's keep-ratio resize + pad to a multiple of 32, instead of the static stretch (an "
                   "exported graph then takes img_shape as a second input, at the first frame's padded size)")
RUNTIME_HELP = f"{_or(RUNTIME_NAMES)} (`maskbench runtimes` lists which run here, in which precisions)"
RUNTIMES_HELP = "comma-separated runtimes (as for --runtime), e.g. onnxruntime,openvino"
PRECISION_HELP = (f"{_or(PRECISIONS)}: what the network computes in, where the runtime supports it "
                  "(see `maskbench runtimes`); outputs and post-processing stay fp32")
PRECISIONS_HELP = "comma-separated precisions (as for --precision), e.g. fp32,int8"
MACHINE_PRECISIONS_HELP = ("fp32 plus the fastest reduced precision this CPU runs natively in OpenVINO, that one "
                           "with --fidelity; docs/performance.md")
CALIBRATION_HELP = ("int8: image file or folder the quantization measures activation ranges on "
                    "(default: the embedded nuScenes frames)")
THREADS_HELP = "CPU threads of the runtime (default: torch's, one per core)"
ENGINE_HELP = ("local (this process) or ray: the frames spread over Ray actors, each running the model as an exported "
               "graph shipped once by the driver (docs/distributed.md; pip install \"maskbench[ray]\")")
ADDRESS_HELP = "--engine ray: the Ray cluster to join (default: RAY_ADDRESS, else a local Ray started for the run)"
ACTORS_HELP = "--engine ray: actors, one model each (default: the cluster's CPUs // --threads-per-actor)"
THREADS_PER_ACTOR_HELP = "--engine ray: CPU threads of each actor's runtime, and the CPUs it reserves (default: 1)"
BATCH_SIZE_HELP = "--engine ray: frames per actor call; a killed actor's batch is retried (default: 4)"
SHIP_BUNDLE_HELP = ("--engine ray: run this deployment bundle (the folder maskbench export --bundle wrote) instead of "
                    "building one from --model/--weights/--runtime")
RESULTS_HELP = ("results.jsonl of a benchmark or rig run, or the folder holding it; several (made on several "
                "machines) merge into one table with a machine column")
METRIC_HELP = f"the AP the report plots and recommend ranks by: {_or(list(METRICS))}"
PAIR_HELP = "two models drawn side by side in the report, comma-separated (as for --model)"
WAIT_HELP = ("when another maskbench run is writing to the same --out folder, wait for it to finish instead of "
             "stopping with an error")


def _with(text: str, note: str | None = None, default: object = None) -> str:
    return text + (f"; {note}" if note else "") + (f" (default: {default})" if default is not None else "")


def _add_list(parser, flag: str, alias: str | None, **kwargs) -> None:
    """A plural flag; ``alias``: its singular spelling, still parsed as the same option but not
    shown in the help (the parser keeps it registered; the action no longer lists it)."""
    action = parser.add_argument(flag, *([alias] if alias else []), **kwargs)
    if alias:
        action.option_strings.remove(alias)


# ----------------------------------------------------------------------------- groups
def add_model_args(parser, *, multiple: bool = False, default: str | None = None, default_text: str | None = None,
                   required: bool = False) -> None:
    """``--model NAME`` or (``multiple``) ``--models NAME,NAME`` (default None: ``default_text``)."""
    if multiple:
        parser.add_argument("--models", type=model_list, default=None, required=required, metavar="MODELS",
                            help=_with(MODELS_HELP, default=default_text))
    else:
        parser.add_argument("--model", type=model_name, default=default, required=required, metavar="MODEL",
                            help=_with(MODEL_HELP, default=default_text or default))


def add_weights_args(parser) -> None:
    """``--weights`` (default random) and ``--seed`` (of random weights, default 0)."""
    parser.add_argument("--weights", default="random", help=_with(WEIGHTS_HELP, default="random"))
    add_seed_args(parser)


def add_seed_args(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help=_with(SEED_HELP, default="0"))


def add_input_args(parser, *, cameras_default: str = "all", images_note: str | None = None) -> None:
    """``--images`` (default: the embedded nuScenes frames) and ``--cameras``."""
    parser.add_argument("--images", type=Path, default=None,
                        help=_with(IMAGES_HELP, images_note, default="the embedded nuScenes frames"))
    parser.add_argument("--cameras", type=camera_list, default=None, metavar="CAMERAS",
                        help=_with(CAMERAS_HELP, default=cameras_default))


def add_resize_args(parser) -> None:
    """``--input-size WxH`` and ``--keep-ratio``; read both with :func:`resize_mode` and ``args.input_size``."""
    parser.add_argument("--input-size", type=image_size, default=None, metavar="WxH", help=INPUT_SIZE_HELP)
    parser.add_argument("--keep-ratio", action="store_true", help=KEEP_RATIO_HELP)


def add_runtime_args(parser, *, multiple: bool = False, default: str | None = None, default_text: str | None = None,
                     required: bool = False, alias: str | None = None, note: str | None = None) -> None:
    """``--runtime NAME`` or (``multiple``) ``--runtimes NAME,NAME`` (``alias``: the hidden
    singular spelling a command accepted the list under before)."""
    if multiple:
        _add_list(parser, "--runtimes", alias, required=required, dest="runtimes", type=runtime_list,
                  default=None, metavar="RUNTIMES", help=_with(RUNTIMES_HELP, note, default_text))
    else:
        parser.add_argument("--runtime", type=runtime_name, default=default, required=required, metavar="RUNTIME",
                            help=_with(RUNTIME_HELP, note, default_text or default))


def add_export_runtime_args(parser) -> None:
    """export's ``--runtime``: what it prepares besides the ONNX file (runtime names, plus ``onnx``)."""
    parser.add_argument("--runtime", type=export_target, default="onnx", metavar="RUNTIME",
                        help=_with(f"{_or(EXPORT_TARGETS)}", "onnx: the ONNX file only; onnxruntime(-cuda): also run "
                                   "it there once; openvino: also convert it to OpenVINO IR (.xml/.bin) and run it "
                                   "once; tensorrt: also build the engine (cached next to the ONNX file) and run it "
                                   "once", "onnx"))


def add_precision_args(parser, *, multiple: bool = False, alias: str | None = None, note: str | None = None,
                       calibration: bool = False, machine_default: bool = False) -> None:
    """``--precision P`` or (``multiple``) ``--precisions P,P``, default fp32; ``calibration``:
    also ``--calibration-images`` (int8); ``machine_default``: the list's default is None, the
    command chooses from the machine (benchmark: ``benchmark/precision_choice.py``)."""
    if multiple:
        _add_list(parser, "--precisions", alias, dest="precisions", type=precision_list,
                  default=None if machine_default else ["fp32"], metavar="PRECISIONS",
                  help=_with(PRECISIONS_HELP, note, MACHINE_PRECISIONS_HELP if machine_default else "fp32"))
    else:
        parser.add_argument("--precision", type=precision_name, default="fp32", metavar="PRECISION",
                            help=_with(PRECISION_HELP, note, "fp32"))
    if calibration:
        parser.add_argument("--calibration-images", type=Path, default=None, help=CALIBRATION_HELP)


def add_threads_args(parser) -> None:
    parser.add_argument("--threads", type=int, default=None, help=THREADS_HELP)


def add_engine_args(parser) -> None:
    """``--engine {local,ray}`` and the Ray flags (read by :mod:`maskbench.distributed.cli`)."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help=_with(ENGINE_HELP, default="local"))
    parser.add_argument("--address", default=None, help=ADDRESS_HELP)
    parser.add_argument("--actors", type=int, default=None, help=ACTORS_HELP)
    parser.add_argument("--threads-per-actor", type=int, default=None, help=THREADS_PER_ACTOR_HELP)
    parser.add_argument("--batch-size", type=int, default=None, help=BATCH_SIZE_HELP)
    parser.add_argument("--from-bundle", type=Path, default=None, metavar="DIR", help=SHIP_BUNDLE_HELP)


def add_output_args(parser, *, default: Path | None = None, default_text: str | None = None, required: bool = False,
                    kind: str = "folder", one_writer: bool = False) -> None:
    """``--out``: the ``kind`` (folder, JSON file) the command writes. ``one_writer``: the folder
    is locked while the command runs (``maskbench.cli.main`` takes the lock, see
    :mod:`maskbench.utils.out_lock`), and ``--wait`` waits for another run holding it."""
    parser.add_argument("--out", type=Path, default=default, required=required,
                        help=_with(f"{kind} to write to", default=default_text or default))
    if one_writer:
        parser.add_argument("--wait", action="store_true", help=WAIT_HELP)
        parser.set_defaults(one_writer=True)


def add_results_args(parser) -> None:
    parser.add_argument("--results", type=Path, nargs="+", required=True, help=RESULTS_HELP)


def add_metric_args(parser) -> None:
    parser.add_argument("--metric", choices=tuple(METRICS), default="mask_ap",
                        help=_with(METRIC_HELP, default="mask_ap"))


def add_pair_args(parser) -> None:
    parser.add_argument("--pair", type=model_pair, default=None, metavar="A,B",
                        help=_with(PAIR_HELP, default=f"{','.join(DEFAULT_PAIR)}, as in the study"))
