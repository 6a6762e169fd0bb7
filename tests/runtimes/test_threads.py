"""``--threads N`` reaches every CPU runtime and is what the runtime reports (and records keep).

The runtimes are built on an uncalibrated, randomly initialised model at 320x192: what is
checked here is the runtimes' own thread settings (OpenVINO's compiled ``INFERENCE_NUM_THREADS``,
ONNX Runtime's session options, torch's process-wide pool), not the detections.
"""

from __future__ import annotations

import pytest
import torch

from maskbench.models.factory import LoadedModel, build_model
from maskbench.models.inputs import preprocess
from maskbench.runtimes import get_runtime
from maskbench.zoo import get_spec

SIZE = (320, 192)


@pytest.fixture(scope="module")
def small():
    spec = get_spec("r50")
    loaded = LoadedModel(build_model(spec), spec, "initialised, untrained")
    image = (torch.rand(96, 160, 3, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8).numpy()
    tensor, meta = preprocess(image, input_size=SIZE, input_format=spec.input_format)
    return loaded, tensor, meta


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")  # one export for both graph runtimes


@pytest.fixture
def restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_torch_runtimes_set_and_report_torch_threads(small, restore_torch_threads):
    loaded, _, _ = small
    runtime = get_runtime("torch", loaded, device="cpu", threads=1)
    assert torch.get_num_threads() == 1 and runtime.threads == 1


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_graph_runtimes_compile_with_the_threads_asked(small, cache, name):
    loaded, tensor, meta = small
    runtime = get_runtime(name, loaded, threads=1, cache_dir=cache)
    runtime.prepare(tensor, meta.img_shape)
    assert runtime.threads == 1 and "1 threads" in runtime.describe()
    (compiled,) = runtime._compiled.values()
    if name == "openvino":
        model, _ = compiled
        assert int(model.get_property("INFERENCE_NUM_THREADS")) == 1
    else:
        assert compiled.get_session_options().intra_op_num_threads == 1
