"""The shared argument groups (maskbench/cli_args.py): building the parser loads no torch, the
names it offers match the registries, and each shared flag behaves the same in every command."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from maskbench.cli import args as cli_args
from maskbench.cli.main import build_parser, main
from maskbench.utils import names
from maskbench.zoo import MODEL_SETS, MODELS, RTMDET_INS, STUDY_MODELS, get_spec

HEAVY = ("torch", "torchvision", "numpy", "cv2", "matplotlib", "pycocotools")


def test_building_the_parser_and_help_import_neither_torch_nor_numpy():
    code = (
        "import sys, maskbench.cli.main as cli\n"
        "cli.build_parser()\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    src = Path(__file__).resolve().parents[1] / "src"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(src), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "usage: maskbench" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_names_match_the_registries_that_import_torch():
    # model names are read from the zoo itself (plain data), so only the runtimes can drift
    from maskbench import evaluation
    from maskbench.pipeline import preprocess
    from maskbench.report import pareto, side_by_side
    from maskbench.runtimes import base, registry

    assert registry.export_targets() == ("onnx", "onnxruntime", "onnxruntime-cuda", "openvino", "tensorrt")
    assert base.PRECISIONS is names.PRECISIONS
    assert preprocess.ResizeMode is names.ResizeMode
    assert evaluation.BACKENDS is names.BACKENDS and pareto.METRICS is names.METRICS
    assert side_by_side.DEFAULT_PAIR is names.DEFAULT_PAIR
    assert set(names.DEFAULT_PAIR) <= {spec.alias for spec in MODELS}


# ----------------------------------------------------------------------------- every command alike
def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(sub.choices)


# What each command needs besides the flag under test.
REQUIRED = {"export": ["--model", "r50", "--out", "o"], "check-conversion": ["--model", "r50", "--runtimes", "torch"],
            "report": ["--results", "r"], "recommend": ["--results", "r"]}

# flag -> (shared help prefix, a valid value, what it parses to, an invalid value or None, the error).
SHARED = {
    "--model": (cli_args.MODEL_HELP, "mask-rcnn_r50_fpn_1x_coco", "mask-rcnn_r50_fpn_1x_coco", "r52",
                "argument --model: unknown model 'r52'; run `maskbench zoo`"),
    "--models": (cli_args.MODELS_HELP, "r50, convnext-t", [get_spec("r50").name, get_spec("convnext-t").name],
                 "r50,r52", "argument --models: unknown model 'r52'"),
    "--weights": (cli_args.WEIGHTS_HELP, "official", "official", None, None),
    "--seed": (cli_args.SEED_HELP, "3", 3, "x", "argument --seed: invalid int value: 'x'"),
    "--images": (cli_args.IMAGES_HELP, "frames", Path("frames"), None, None),
    "--cameras": (cli_args.CAMERAS_HELP, "CAM_FRONT,CAM_BACK", ["CAM_FRONT", "CAM_BACK"], ",",
                  "argument --cameras: expected one or more comma-separated names"),
    "--input-size": (cli_args.INPUT_SIZE_HELP, "320x192", (320, 192), "320",
                     "argument --input-size: size must look like 1344x800, got '320'"),
    "--runtime": (cli_args.RUNTIME_HELP, "openvino", "openvino", "tensorflow",
                  "argument --runtime: unknown runtime 'tensorflow'; choose one of: torch, torch-compile,"),
    "--runtimes": (cli_args.RUNTIMES_HELP, "onnxruntime,openvino", ["onnxruntime", "openvino"], "onnxruntime,tf",
                   "argument --runtimes: unknown runtime 'tf'; choose one of: torch,"),
    "--precision": (cli_args.PRECISION_HELP, "int8", "int8", "fp8",
                    "argument --precision: unknown precision 'fp8'; choose one of: fp32, fp16, bf16, int8"),
    "--precisions": (cli_args.PRECISIONS_HELP, "fp32,int8", ["fp32", "int8"], "fp32,fp8",
                     "argument --precisions: unknown precision 'fp8'; choose one of: fp32, fp16, bf16, int8"),
    "--calibration-images": (cli_args.CALIBRATION_HELP, "calib", Path("calib"), None, None),
    "--threads": (cli_args.THREADS_HELP, "2", 2, "two", "argument --threads: invalid int value: 'two'"),
    "--out": ("", "o", Path("o"), None, None),
    "--results": (cli_args.RESULTS_HELP, "r", [Path("r")], None, None),
    "--metric": (cli_args.METRIC_HELP, "box_ap", "box_ap", "ap", "argument --metric: invalid choice: 'ap'"),
    "--pair": (cli_args.PAIR_HELP, "x101,s101", ("x101", "s101"), "x101", "argument --pair: two models, e.g."),
}
# The deliberate exceptions: export's --runtime also offers 'onnx' (what it exports for), and
# evaluate's --images is the folder of its COCO annotation file's images.
# rig: a count or names; recommend: the rig's camera count
OWN_MEANING = {("export", "--runtime"), ("evaluate", "--images"), ("rig", "--cameras"), ("recommend", "--cameras")}


def _cases():
    for command, parser in _commands().items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in SHARED and (command, flag) not in OWN_MEANING:
                    yield pytest.param(command, flag, id=f"{command} {flag}")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


@pytest.mark.parametrize(("command", "flag"), list(_cases()))
def test_a_shared_flag_parses_and_refuses_the_same_in_every_command(command, flag, capsys):
    help_prefix, good, parsed, bad, error = SHARED[flag]
    parser = build_parser()
    action = next(a for a in _commands()[command]._actions if flag in a.option_strings)
    assert action.help.startswith(help_prefix)
    base = [command, *REQUIRED.get(command, [])]
    if flag in base:
        base = base[:base.index(flag)] + base[base.index(flag) + 2:]
    assert getattr(parser.parse_args([*base, flag, good]), _dest(flag)) == parsed
    if bad is not None:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*base, flag, bad])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1, err  # one line
        assert err.startswith(f"maskbench {command}: error: {error}"), err


def test_every_flag_two_commands_share_has_one_type_and_one_choice_list():
    seen: dict[str, tuple] = {}
    for command, parser in _commands().items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help") or (command, flag) in OWN_MEANING:
                    continue
                kind = (action.type, action.choices, action.nargs, action.const, type(action).__name__)
                first = seen.setdefault(flag, (command, kind))
                assert kind == first[1], f"{flag}: {command} differs from {first[0]}"
    assert {"--model", "--runtime", "--precision", "--threads", "--seed", "--out", "--input-size"} <= set(seen)


def test_defaults_mean_the_same_where_the_flag_is_optional():
    parsed = {command: vars(build_parser().parse_args([command, *REQUIRED.get(command, [])]))
              for command in ("predict", "export", "check-conversion", "evaluate", "benchmark")}
    for command, values in parsed.items():
        assert values["weights"] == "random" and values["seed"] == 0, command
        assert values["input_size"] is None and values["keep_ratio"] is False, command
        # benchmark's None: fp32 plus this machine's fastest native reduced precision (precision_choice.py)
        assert values.get("precision", values.get("precisions")) in ("fp32", ["fp32"], None), command
        assert values.get("threads") is None and values["images"] is None, command
        assert cli_args.resize_mode(argparse.Namespace(**values)) is names.ResizeMode.STRETCH
    assert parsed["predict"]["model"] == parsed["evaluate"]["model"] == "convnext-t"
    assert parsed["predict"]["runtime"] is None and parsed["evaluate"]["runtime"] is None
    assert parsed["benchmark"]["models"] is None and parsed["benchmark"]["runtimes"] is None
    assert parsed["benchmark"]["precisions"] is None


def test_the_singular_spelling_of_a_list_flag_still_takes_the_list():
    """benchmark --precision and check-conversion --runtime took lists before the plural flags
    (README/docs use them): they still do, hidden from the help."""
    parser = build_parser()
    args = parser.parse_args(["benchmark", "--precision", "fp32,int8"])
    assert args.precisions == ["fp32", "int8"]
    args = parser.parse_args(["check-conversion", "--model", "r50", "--runtime", "onnxruntime,openvino"])
    assert args.runtimes == ["onnxruntime", "openvino"]
    assert "--precision " not in _commands()["benchmark"].format_help()
    assert "--runtime " not in _commands()["check-conversion"].format_help()


def test_models_all_stands_alone(capsys):
    parser = build_parser()
    assert parser.parse_args(["benchmark", "--models", "ALL"]).models == list(MODEL_SETS["all"])
    with pytest.raises(SystemExit):
        parser.parse_args(["benchmark", "--models", "all,r50"])
    assert "'all' stands alone" in capsys.readouterr().err


def test_models_take_named_sets_in_order_each_model_once():
    parser = build_parser()
    models = parser.parse_args(["benchmark", "--models", "rtmdet-ins-s,rtmdet-ins,study,r101"]).models
    rtmdet = [spec.name for spec in MODELS if spec.family is RTMDET_INS]
    assert models == rtmdet[1:2] + rtmdet[:1] + rtmdet[2:] + list(STUDY_MODELS)
    assert len(rtmdet) == 5 and len(STUDY_MODELS) == 5 and get_spec("r101").name in STUDY_MODELS
    assert "rtmdet-ins" in _commands()["benchmark"].format_help()


def test_an_unknown_name_is_refused_before_any_model_work(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("maskbench.benchmark.plan.plan_jobs", lambda *a, **k: calls.append(a))
    monkeypatch.setattr("maskbench.predict.predictor.run_predict", lambda *a, **k: calls.append(a))
    for argv in (["benchmark", "--precision", "fp8"], ["benchmark", "--models", "r52"],
                 ["predict", "--runtime", "tensorflow"],
                 ["export", "--model", "r50", "--out", "o", "--precision", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and "unknown" in err, err
    assert not calls


def test_the_commands_that_write_a_folder_lock_it_and_take_wait():
    """benchmark, predict, evaluate, export and report hold their --out folder
    (maskbench/out_lock.py); --wait waits for another run holding it, with the same help
    everywhere. report locks in its command (its folder defaults to the results folder)."""
    parser = build_parser()
    locking = {command for command, sub in _commands().items()
               if any("--wait" in action.option_strings for action in sub._actions)}
    assert locking == {"benchmark", "predict", "evaluate", "export", "report", "rig"}
    assert parser.parse_args(["export", "--model", "r50", "--out", "o"]).one_writer is True
    for command in locking:
        action = next(a for a in _commands()[command]._actions if "--wait" in a.option_strings)
        assert action.help == cli_args.WAIT_HELP
        if command in ("export", "report"):  # required arguments
            continue
        assert parser.parse_args([command]).one_writer is True
        assert parser.parse_args([command]).wait is False and parser.parse_args([command, "--wait"]).wait is True
    assert not hasattr(parser.parse_args(["report", "--results", "r"]), "one_writer")


def test_bundle_is_an_output_and_from_bundle_an_input(capsys):
    """``--bundle DIR`` is where export/recommend write a bundle; a bundle to run is ``--from-bundle``."""
    parser = build_parser()
    for command in (["predict", "--engine", "ray"], ["evaluate", "--engine", "ray"], ["rig"]):
        assert parser.parse_args([*command, "--from-bundle", "b"]).from_bundle == Path("b")
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--bundle", "b"])
    assert "unrecognized arguments: --bundle" in capsys.readouterr().err
    assert parser.parse_args(["export", "--model", "r50", "--out", "o", "--bundle", "b"]).bundle == Path("b")
    assert parser.parse_args(["recommend", "--results", "r", "--bundle", "b"]).bundle == Path("b")
