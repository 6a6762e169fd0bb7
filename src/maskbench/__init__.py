"""maskbench: choose and deploy the best instance-segmentation model for the computer on board.

The few names a user needs (see the README's "Python API"), imported on first use so that
``import maskbench`` stays light:

- ``load_predictor(model, weights="random")``: a zoo model as a predictor of RGB uint8 images,
  giving :class:`Detections` (boxes, scores, labels, masks in original-image pixels);
- ``get_runtime(name, predictor.loaded)``: the same network on another runtime (ONNX Runtime,
  OpenVINO, TensorRT, torch.compile), to set as ``predictor.runtime``;
- ``plan_jobs(models, runtimes, precisions, JobSpec(...))`` and ``run_benchmark(jobs, out_dir)``:
  the benchmark, each job in its own process, records in ``out_dir/results.jsonl``;
- ``evaluate_predictor(predictor, annotations, images)``: COCO box and mask AP
  (``embedded_coco()`` is the shipped 80-image example);
- ``MODELS``, ``get_spec``: the zoo; ``available_runtimes()``: what runs on this machine;
- ``deploy``: a bundle from ``maskbench export --bundle`` without torch
  (``maskbench.deploy.load(DIR)(image)``, docs/deploy.md).
"""

from importlib import import_module

__version__ = "0.1.0"

_WHERE = {
    "MODELS": "maskbench.zoo",
    "get_spec": "maskbench.zoo",
    "load_predictor": "maskbench.predict.predictor",
    "Predictor": "maskbench.predict.predictor",
    "Detections": "maskbench.pipeline.detections",
    "ResizeMode": "maskbench.utils.names",
    "get_runtime": "maskbench.runtimes.registry",
    "available_runtimes": "maskbench.runtimes.registry",
    "plan_jobs": "maskbench.benchmark.plan",
    "JobSpec": "maskbench.benchmark.plan",
    "run_benchmark": "maskbench.benchmark.runner",
    "evaluate_predictor": "maskbench.evaluation.run",
    "embedded_coco": "maskbench.evaluation.embedded",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name == "deploy":  # a subpackage, importable as maskbench.deploy after a plain `import maskbench`
        return import_module("maskbench.deploy")
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'maskbench' has no attribute {name!r}")


def _load_families() -> None:
    """Model families from outside maskbench (``MASKBENCH_FAMILIES``, the ``maskbench.families``
    entry points), loaded here: this runs before any other maskbench module, so none is half
    imported when a family's module imports maskbench's."""
    import os
    from importlib.metadata import entry_points

    if os.environ.get("MASKBENCH_FAMILIES") or entry_points(group="maskbench.families"):
        from .zoo.families import load_plugins

        load_plugins()


_load_families()
