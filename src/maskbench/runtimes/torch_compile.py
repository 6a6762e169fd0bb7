"""``torch.compile`` of the network's dense stages; the data-dependent parts stay eager.

Compiled: ``extract_features`` (backbone + FPN) and the RPN head's convolutions, whose shapes
are fixed by the input size, so each input size is compiled once (``dynamic=False``). Eager:
proposal selection, NMS, top-k, RoIAlign (data-dependent shapes would break the graph or make
it recompile per frame) and the RoI heads, whose batch is the number of proposals or
detections, which varies from frame to frame with trained weights (every new count would be a
new compilation, and with CUDA graphs a new recording).

On CUDA the mode is ``reduce-overhead`` (CUDA graphs: the compiled stages replay as one
launch); on the CPU the default mode. fp16 (CUDA) and bf16 (CPU) are applied as for the eager
runtime (:mod:`.torch_`), inside the compiled stages. :meth:`prepare` compiles (and on CUDA
records the graphs) so that the latency measured afterwards excludes it.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.factory import LoadedModel
from .torch_ import TorchRuntime

COMPILED_STAGES = 2  # the first dense stages: extract_features, rpn_head.forward
CALLS_TO_PREPARE = 3  # compile, then (CUDA graphs) warm up and record


class TorchCompileRuntime(TorchRuntime):
    """``backend``: torch.compile's backend (``inductor``; tests use ``aot_eager`` to check the
    wiring in seconds); ``compile_mode``: ``None`` = ``reduce-overhead`` on CUDA, else default."""

    name = "torch-compile"
    private_model = True

    def __init__(self, loaded: LoadedModel, device: str | None = None, precision: str = "fp32",
                 backend: str = "inductor", compile_mode: str | None = None) -> None:
        super().__init__(loaded, device, precision)
        self.on_cuda = self.device.startswith("cuda")
        self.compile_mode = compile_mode or ("reduce-overhead" if self.on_cuda else "default")
        self.backend = backend
        self._prepared: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        options: dict[str, Any] = {"backend": backend, "dynamic": False}
        if backend == "inductor":
            options["mode"] = self.compile_mode
        for owner, attribute in self.model.dense_stages()[:COMPILED_STAGES]:
            setattr(owner, attribute, torch.compile(getattr(owner, attribute), **options))

    def describe(self) -> str:
        return f"{self.name} ({self.precision}, {self.device}, {self.backend} {self.compile_mode})"

    def prepare(self, images: torch.Tensor, img_shape: tuple[int, int]) -> None:
        key = (tuple(images.shape), tuple(img_shape))
        if key not in self._prepared:
            for _ in range(CALLS_TO_PREPARE if self.on_cuda else 1):
                self(images, img_shape)
            self._prepared.add(key)

    def _begin_step(self) -> None:
        if self.on_cuda and self.compile_mode == "reduce-overhead":
            # A new step: the previous call's CUDA-graph outputs may be overwritten (they were
            # all consumed by eager code that made its own tensors).
            torch.compiler.cudagraph_mark_step_begin()
