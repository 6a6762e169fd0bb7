"""The conversion check's rows as JSON, with the versions and threads they were measured with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..utils.files import atomic_open
from ..utils.machine import describe_environment
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
    """The file's ``info``: :func:`maskbench.utils.machine.describe_environment` (versions under
    ``packages``) plus ``runtime_threads``, the threads the runtimes were given."""
    info = describe_environment("cpu")
    info["runtime_threads"] = threads or info["torch_threads"]
    return info
