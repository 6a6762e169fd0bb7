"""TensorRT: a native engine built from the exported ONNX graph (fp32 or fp16), run on CUDA.

UNTESTED: TensorRT was not available where maskbench was developed (no machine there could
install it). This module is written from NVIDIA's documented TensorRT 10 Python API; only its
pure logic (engine cache, keys, error messages, builder flags against a stand-in module) is
covered by tests. Treat its numbers as unverified until ``maskbench check-conversion --runtime
tensorrt`` has passed on your machine.

Build: ``trt.Builder`` -> ``create_network(0)`` (explicit batch is the default in TensorRT 10)
-> ``trt.OnnxParser`` -> builder config (workspace limit, ``BuilderFlag.FP16`` for fp16) ->
``build_serialized_network``. Run: ``deserialize_cuda_engine`` -> ``create_execution_context``;
inputs are torch CUDA tensors (``set_tensor_address``); the outputs' sizes depend on the data
(NonMaxSuppression decides how many detections there are), so each output gets an
``IOutputAllocator`` that TensorRT asks for memory once it knows the size;
``execute_async_v3`` on a torch CUDA stream.

Engine cache: next to the ONNX file, ``<onnx stem>_<precision>.engine`` plus a JSON holding the
engine's key (the ONNX file's export key, TensorRT version, precision, GPU name and compute
capability) and the engine file's sha256. An engine whose JSON is missing, differs from the
key wanted (another GPU, TensorRT version or export) or whose bytes do not match is rebuilt,
never trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch

from ..export.onnx_export import key_digest, stored_key
from ..utils.errors import MaskbenchError
from ..utils.files import atomic_open
from .base import FeatureTapUnavailable
from .exported import ExportedGraphRuntime
from .registry import UNTESTED_TENSORRT

ENGINE_VERSION = 1  # bump when the build settings below change what an engine computes
WORKSPACE_BYTES = 4 << 30
NO_TAP = ("feature taps are not available for tensorrt (untested here: an engine with the FPN outputs added "
          "would be a second build); compare its detections, or the same graph on onnxruntime-cuda")
TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
                "INT64": torch.int64, "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}


class TensorRTError(MaskbenchError):
    """An ONNX graph TensorRT cannot parse or build, or an engine that does not run."""


# ------------------------------------------------------------------------------ engine cache
def gpu_identity(device: str) -> dict:
    index = torch.device(device).index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return {"gpu": torch.cuda.get_device_name(index), "compute_capability": f"{major}.{minor}"}


def engine_key(onnx_key: dict | None, tensorrt_version: str, precision: str, gpu: dict) -> dict:
    """Everything an engine depends on."""
    return {"onnx_key_sha256": key_digest(onnx_key), "tensorrt": tensorrt_version, "precision": precision,
            **gpu, "engine_version": ENGINE_VERSION, "workspace_bytes": WORKSPACE_BYTES}


def engine_path(onnx_path: Path, precision: str) -> Path:
    return Path(onnx_path).with_name(f"{Path(onnx_path).stem}_{precision}.engine")


def key_path(engine_file: Path) -> Path:
    return engine_file.with_name(engine_file.name + ".json")


def load_engine(engine_file: Path, key: dict) -> bytes | None:
    """The cached engine's bytes if its stored key is ``key`` and its sha256 matches, else None."""
    try:
        stored = json.loads(key_path(engine_file).read_text())
        data = engine_file.read_bytes()
    except (OSError, ValueError):
        return None
    if stored.get("key") != key or stored.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return data


def save_engine(engine_file: Path, key: dict, data: bytes) -> None:
    """Engine then key, each written atomically (a crash leaves no key for a half-written engine)."""
    meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "note": UNTESTED_TENSORRT}
    for path, payload in ((engine_file, data), (key_path(engine_file), json.dumps(meta, indent=2).encode())):
        with atomic_open(path, "wb") as file:
            file.write(payload)


def cached_engine(engine_file: Path, key: dict, build: Callable[[], bytes], force: bool = False) -> tuple[bytes, bool]:
    """(engine bytes, whether they were built now): from the cache when valid, else ``build()``."""
    data = None if force else load_engine(engine_file, key)
    if data is not None:
        return data, False
    data = build()
    save_engine(engine_file, key, data)
    return data, True


# ------------------------------------------------------------------------------ build and run
def build_engine(trt, onnx_path: Path, precision: str, logger) -> bytes:
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(" ".join(str(parser.get_error(i)).split()) for i in range(parser.num_errors))
        raise TensorRTError(f"TensorRT could not parse {Path(onnx_path).name}: {errors or 'no error given'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"TensorRT could not build a {precision} engine from {Path(onnx_path).name} "
                            "(its log above says why)")
    return bytes(serialized)


def output_allocator(trt, device: str):
    """An ``IOutputAllocator`` for one data-dependent output: a grow-only torch CUDA buffer."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffer: torch.Tensor | None = None
            self.shape: tuple[int, ...] | None = None

        def reallocate_output(self, tensor_name, memory, size, alignment):
            size = max(int(size), 1)  # an empty output still needs a valid address
            if self.buffer is None or self.buffer.numel() < size:
                self.buffer = torch.empty(size, dtype=torch.uint8, device=device)
            return self.buffer.data_ptr()

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name, shape):
            self.shape = tuple(int(d) for d in shape)

        def tensor(self, dtype: torch.dtype) -> torch.Tensor:
            # TensorRT has called reallocate_output and notify_shape by now
            shape, buffer = cast("tuple[int, ...]", self.shape), cast(torch.Tensor, self.buffer)
            count = math.prod(shape)
            nbytes = count * torch.empty((), dtype=dtype).element_size()
            return buffer[:nbytes].view(dtype).reshape(shape)

    return OutputAllocator()


class EngineRunner:
    """One execution context of a deserialised engine, with its stream and output allocators."""

    def __init__(self, trt, runtime, engine, device: str) -> None:
        self.runtime, self.engine, self.device = runtime, engine, device  # kept alive together
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]  # ONNX order
        dtypes = {getattr(trt.DataType, k): v for k, v in TORCH_DTYPES.items() if hasattr(trt.DataType, k)}
        self.dtypes = {n: dtypes[engine.get_tensor_dtype(n)] for n in names}
        self.stream = torch.cuda.Stream(device)
        self.allocators = {name: output_allocator(trt, device) for name in self.outputs}
        for name, allocator in self.allocators.items():
            self.context.set_output_allocator(name, allocator)

    def __call__(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            inputs = {n: torch.from_numpy(feeds[n]).to(self.device, self.dtypes[n]).contiguous() for n in self.inputs}
            for name, tensor in inputs.items():
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise TensorRTError("TensorRT failed to run the engine (execute_async_v3 returned False)")
            outputs = [self.allocators[n].tensor(self.dtypes[n]).cpu() for n in self.outputs]
        return tuple(t.float().numpy() if t.is_floating_point() else t.numpy() for t in outputs)


class TensorRTRuntime(ExportedGraphRuntime):
    """TensorRT engine on CUDA, fp32 or fp16 (``BuilderFlag.FP16``: TensorRT may then pick fp16
    for any layer). Untested: TensorRT was not available where maskbench was developed."""

    name = "tensorrt"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.engine_paths: dict[Path, Path] = {}  # ONNX file -> its engine
        self.built: list[Path] = []  # engines built (not taken from the cache) by this runtime

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device}; {UNTESTED_TENSORRT})"

    def tensor_tap(self, names, label: str = "FPN"):
        raise FeatureTapUnavailable(NO_TAP)

    def artifact_files(self) -> list[Path]:
        return super().artifact_files() + list(self.engine_paths.values())

    def artifact_lines(self) -> list[str]:
        return [f"TensorRT engine ({self.precision}): {engine} (+ {engine.name}.json, its key)"
                for engine in self.engine_paths.values()] + super().artifact_lines()

    def _compile(self, path: Path, extra_outputs: Sequence[str] = ()):
        if extra_outputs:
            raise FeatureTapUnavailable(NO_TAP)
        trt = self.require("tensorrt")
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")  # TensorRT's own plugins (its ONNX importer may use them)
        key = engine_key(stored_key(path), trt.__version__, self.precision, gpu_identity(self.device))
        engine_file = engine_path(path, self.precision)
        runtime = trt.Runtime(logger)
        data, built = cached_engine(engine_file, key, lambda: build_engine(trt, path, self.precision, logger))
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None and not built:  # valid key and bytes, yet unusable: rebuild once
            data, built = cached_engine(engine_file, key, lambda: build_engine(trt, path, self.precision, logger),
                                        force=True)
            engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise TensorRTError(f"TensorRT could not load the engine it built ({engine_file})")
        self.engine_paths[path] = engine_file
        if built:
            self.built.append(engine_file)
        return EngineRunner(trt, runtime, engine, self.device)

    def _run(self, compiled, feeds: dict[str, np.ndarray],
             names: Sequence[str]) -> tuple[np.ndarray, ...]:
        """The engine's four outputs (boxes, scores, labels, the family's masks): it has no
        others (no tap, :data:`NO_TAP`)."""
        return compiled(feeds)
