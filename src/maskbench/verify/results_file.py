"""The conversion check's rows as JSON, with the versions and threads they were measured with."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_open
from .check_row import CheckRow


def write_json(rows: Sequence[CheckRow], path: Path, info: dict | None = None) -> Path:
    """Rows (plus ``info``: versions, threads...) as JSON, written atomically."""
    payload = {"info": info or {}, "rows": [r.as_dict() for r in rows]}
    text = json.dumps(payload, indent=2, default=_json_default, allow_nan=False) + "\n"
    with atomic_open(path) as file:
        file.write(text)
    return Path(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def environment_info(threads: int | None = None) -> dict:
    import platform

    import torchvision

    info = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "runtime_threads": threads or torch.get_num_threads()}
    for package in ("onnx", "onnxruntime", "openvino", "tensorrt"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    return info
