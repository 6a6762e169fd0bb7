"""Read an MMDetection ``.pth`` without running code hidden in its pickle.

``torch.load(weights_only=False)`` on an untrusted file is arbitrary code execution. torch's
``weights_only=True`` rebuilds tensors and plain containers only, but refuses the metadata
that mmengine-era checkpoints pickle next to the weights (a message hub's history buffers,
numpy arrays and scalars). Those few names are allowed through torch's public
``torch.serialization.safe_globals`` -- mapped to inert stand-ins, never to the real classes,
so nothing they would do on construction runs. Every other global is refused in one line.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..utils.errors import CheckpointError, one_line

# Metadata names official checkpoints carry; extend only with plain-data classes.
INERT_METADATA_GLOBALS = (
    "mmengine.logging.history_buffer.HistoryBuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
)
# How torch names a refused global ("Unsupported global: GLOBAL os.system was not...", "unsupported
# GLOBAL posix.system whose module posix is blocked"); a truncated file can name a cut-off one ("tor.").
_REFUSED_GLOBAL = re.compile(r"[Uu]nsupported (?:global: )?GLOBAL ([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s")


class InertPickledObject:
    """Stand-in for a metadata object: records what the pickle passed, runs nothing.

    It accepts the ways a pickle builds such objects (a call, ``__new__``, ``__setstate__``),
    so that metadata decodes without error and without the class being imported."""

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        stand_in = object.__new__(cls)
        stand_in.args, stand_in.kwargs, stand_in.state = args, kwargs, None
        return stand_in

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<inert {self.pickled_name}>"


def _inert_class(qualified_name: str) -> type:
    """A class per name: pickle's NEWOBJ demands a type, and torch maps each allowed name to
    its own object."""
    return type(f"Inert[{qualified_name}]", (InertPickledObject,), {"pickled_name": qualified_name})


_STAND_INS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    (_inert_class(name), name) for name in INERT_METADATA_GLOBALS
]


def load_checkpoint_file(path: Path) -> object:
    """The unpickled checkpoint (tensors, containers, inert metadata), or one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; check the path or let maskbench download it")
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        refused = _REFUSED_GLOBAL.search(str(err))
        if refused:
            raise CheckpointError(
                f"{path}: refusing to load, the checkpoint's pickle refers to '{refused.group(1)}' "
                "which could run code; only load checkpoints you trust from the official URLs"
            ) from None
        raise _unreadable(path, err) from None
    except MemoryError:
        raise  # a board short of RAM must not be told its file is corrupt
    except Exception as err:  # torch, zipfile and pickle each raise their own types for a damaged file
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable PyTorch checkpoint ({one_line(err)}); "
                           "re-download it (delete the file) or check the path")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of an MMDetection ``.pth``, without executing pickled code.

    Accepts mmcv (2020, possibly legacy non-zip format) and mmengine checkpoints, or a bare
    state dict. Strips a DataParallel ``module.`` prefix and widens fp16/bf16 weights to
    float32, which the CPU model runs.
    """
    path = Path(path)
    return _normalise_state_dict(_find_state_dict(load_checkpoint_file(path), path), path)


def _find_state_dict(checkpoint: object, path: Path) -> dict:
    """The weights inside a checkpoint: its 'state_dict' entry, or the dict itself if bare."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise CheckpointError(
        f"{path}: no 'state_dict' in this checkpoint and it is not a bare state dict; "
        "use an MMDetection model checkpoint (.pth)"
    )


def _normalise_state_dict(state_dict: dict, path: Path) -> dict[str, torch.Tensor]:
    """Plain float32-or-integer CPU tensors under the model's own key names."""
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: state_dict entry '{key}' is a {type(value).__name__}, not a tensor; "
                "the file is damaged or not a model checkpoint"
            )
    prefix = "module."
    strip = bool(state_dict) and all(str(key).startswith(prefix) for key in state_dict)
    normalised = {}
    for key, value in state_dict.items():
        tensor = value.detach()  # also drops any hooks or subclass a pickle attached
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        normalised[key[len(prefix):] if strip else key] = tensor
    return normalised
