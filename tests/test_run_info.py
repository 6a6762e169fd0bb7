"""The run's info block, built once for predict, evaluate, Ray and a deployed bundle."""

from maskbench.pipeline.preprocess import ResizeMode
from maskbench.utils.run_info import run_info


def test_run_info_names_the_model_weights_preprocessing_and_runtime():
    info = run_info("m", "official", ResizeMode.STRETCH, (128, 96), "onnxruntime 1.0 (fp32)")
    assert info == {"model": "m", "weights": "official", "preprocessing": "stretch (128, 96)",
                    "runtime": "onnxruntime 1.0 (fp32)"}


def test_run_info_defaults_and_the_bundles_weights_hash():
    info = run_info("m", "random", "keep-ratio", None, None, weights_sha256="ab")
    assert info == {"model": "m", "weights": "random", "weights_sha256": "ab",
                    "preprocessing": "keep-ratio default", "runtime": "torch (eager, cpu)"}
