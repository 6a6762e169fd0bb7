"""Fetch, verify and safely read official MMDetection checkpoints.

Three jobs live here, each kept to plain functions:

* downloading a checkpoint into a cache, resumable and verified against the
  sha256 prefix that MMDetection (like torch.hub) puts in the file name;
* reading a ``.pth`` file without running code hidden in its pickle, because
  ``torch.load(weights_only=False)`` on an untrusted file is arbitrary code
  execution, while ``weights_only=True`` refuses the mmengine metadata that
  recent checkpoints carry next to the weights;
* comparing the loaded weights with the model so that a wrong checkpoint gives
  one readable line instead of a wall of ``load_state_dict`` output.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import pickle
import re
import types
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch
import torch._weights_only_unpickler as _torch_weights_only
from tqdm import tqdm

from maskbench.errors import CheckpointError, DownloadError

_CHUNK_BYTES = 1 << 20
_USER_AGENT = "maskbench/0.1 (+checkpoint download)"
# MMDetection names end in "-<sha256 prefix>.pth", the torch.hub convention.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

# ---------------------------------------------------------------------------
# Cache location and URL conventions
# ---------------------------------------------------------------------------


def checkpoint_cache_dir() -> Path:
    """Where downloaded checkpoints live.

    ``$MASKBENCH_CACHE`` wins so that a board with a small root filesystem can
    point at an SD card or NFS share; otherwise follow the XDG convention.
    Empty variables count as unset, as the XDG spec asks.
    """
    explicit = os.environ.get("MASKBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    if xdg_cache:
        return Path(xdg_cache).expanduser() / "maskbench" / "checkpoints"
    return Path.home() / ".cache" / "maskbench" / "checkpoints"


def checkpoint_file_name(url: str) -> str:
    """Last path component of ``url``, unquoted (``%2B`` -> ``+``), as the cache file name."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise DownloadError(f"{url}: the URL does not end in a file name; give the URL of the .pth file itself")
    return name


def sha256_prefix_from_url(url: str) -> str:
    """The sha256 prefix encoded in an MMDetection checkpoint name (``...-d4b0c5d6.pth``).

    Reading it from the name means the model zoo needs no separate hash table,
    and a checkpoint renamed or swapped on the server is caught.
    """
    match = _HASH_IN_NAME.search(checkpoint_file_name(url))
    if match is None:
        raise DownloadError(
            f"{url}: cannot tell the expected sha256 from the file name (expected '...-<8 hex>.pth'); "
            "pass the sha256 prefix explicitly"
        )
    return match.group(1)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so big checkpoints do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------


class _TransferCut(Exception):
    """The server closed the connection before sending everything it announced."""


def download_checkpoint(
    url: str,
    sha256_prefix: str,
    cache_dir: Path | None = None,
    progress: bool = True,
    timeout: float = 30,
) -> Path:
    """Return the path of the verified checkpoint at ``url``, downloading it if needed.

    A cached file whose hash matches is returned without touching the network,
    so the tool works offline once a checkpoint is in place. Downloads go to
    ``<name>.part`` and resume from it with an HTTP Range request, because
    checkpoints are 100-500 MB and boards often sit on flaky links. Only a
    file whose sha256 starts with ``sha256_prefix`` is renamed into place.
    """
    expected_prefix = sha256_prefix.lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected_prefix):
        raise ValueError(f"sha256_prefix must be 8 to 64 hex digits, got {sha256_prefix!r}")
    cache_dir = Path(cache_dir) if cache_dir is not None else checkpoint_cache_dir()
    final_path = cache_dir / checkpoint_file_name(url)
    part_path = final_path.with_name(final_path.name + ".part")

    if final_path.is_file() and file_sha256(final_path).startswith(expected_prefix):
        return final_path
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"cannot create the checkpoint cache {cache_dir} ({_one_line(err)}); "
            "set MASKBENCH_CACHE to a writable folder"
        ) from None

    try:
        _download_to_part(url, part_path, progress, timeout)
    except urllib.error.HTTPError as err:
        raise _cannot_download(url, f"HTTP {err.code} {err.reason}", final_path) from None
    except urllib.error.URLError as err:
        raise _cannot_download(url, _one_line(err.reason), final_path) from None
    except (_TransferCut, http.client.HTTPException, OSError) as err:
        raise _cannot_download(url, _one_line(err), final_path) from None

    actual = file_sha256(part_path)
    if not actual.startswith(expected_prefix):
        part_path.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: downloaded file has sha256 {actual[:len(expected_prefix)]}..., expected {expected_prefix}; "
            f"deleted it, run again to retry or put a good copy at {final_path}"
        )
    os.replace(part_path, final_path)
    return final_path


def _download_to_part(url: str, part_path: Path, progress: bool, timeout: float) -> None:
    """Bring ``part_path`` up to the full file, resuming what an earlier attempt left.

    Leaves the ``.part`` file in place on any failure so the next run resumes.
    """
    resume_from = part_path.stat().st_size if part_path.exists() else 0
    try:
        response = _open_url(url, resume_from, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and resume_from > 0:
            # Nothing lies past our bytes: the .part is complete, or corrupt; the hash check decides.
            return
        raise
    if response.status == 206 and _content_range_start(response) != resume_from:
        # A range we did not ask for cannot be appended; fetch the whole file instead.
        response.close()
        resume_from = 0
        response = _open_url(url, 0, timeout)

    with response:
        appending = response.status == 206
        already = resume_from if appending else 0
        announced = response.headers.get("Content-Length")
        total = already + int(announced) if announced and announced.isdigit() else None
        with open(part_path, "ab" if appending else "wb") as part_file, tqdm(
            total=total,
            initial=already,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part_path.name[: -len(".part")],
            disable=not progress,
        ) as bar:
            received = already
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                part_file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise _TransferCut(f"connection closed after {received} of {total} bytes; run again to resume")


def _open_url(url: str, start: int, timeout: float):
    """Open ``url``, asking for the bytes from ``start`` on when resuming."""
    headers = {"User-Agent": _USER_AGENT}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _content_range_start(response) -> int | None:
    """First byte offset of a 206 reply, or None if the header is missing or odd."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _cannot_download(url: str, reason: str, final_path: Path) -> DownloadError:
    """The one-line error for any failure to fetch, with the manual way around it."""
    return DownloadError(
        f"cannot download {url} ({reason}); download it elsewhere and put it at {final_path}, "
        "or pass --weights /path/to/file.pth"
    )


def _one_line(reason: object) -> str:
    """``str(reason)`` squeezed onto one line, since errors print as a single line."""
    return " ".join(str(reason).split()) or type(reason).__name__


# ---------------------------------------------------------------------------
# Restricted unpickling
# ---------------------------------------------------------------------------

# Metadata classes that official mmengine-era checkpoints pickle next to the
# weights (message hub history, numpy arrays and scalars). They are replaced by
# inert stand-ins: the real class is never imported or called, so what they
# would do on construction does not matter. Extend only with plain-data classes.
INERT_METADATA_GLOBALS = frozenset(
    {
        "mmengine.logging.history_buffer.HistoryBuffer",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
    }
)


class InertPickledObject:
    """Stand-in for a metadata object: records what the pickle passed, runs nothing.

    Supports every way a pickle builds an object (call, ``__new__``,
    ``__setstate__``, list/dict filling) so that metadata decodes without error.
    """

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        stand_in = object.__new__(cls)
        stand_in.args = args
        stand_in.kwargs = kwargs
        stand_in.state = None
        stand_in.items = []
        return stand_in

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items.append(item)

    def extend(self, items):
        self.items.extend(items)

    def __setitem__(self, key, value):
        self.items.append((key, value))

    def __repr__(self):
        return f"<inert {self.pickled_name}>"


_inert_classes: dict[str, type] = {}


def _inert_class(qualified_name: str) -> type:
    """One stand-in class per pickled name; a class, because pickle's NEWOBJ demands a type."""
    if qualified_name not in _inert_classes:
        _inert_classes[qualified_name] = type(
            f"Inert[{qualified_name}]", (InertPickledObject,), {"pickled_name": qualified_name}
        )
    return _inert_classes[qualified_name]


class UnsafeGlobalError(pickle.UnpicklingError):
    """The pickle asked for a global outside the allowlist; carries its dotted name."""

    def __init__(self, qualified_name: str):
        super().__init__(qualified_name)
        self.qualified_name = qualified_name


@functools.cache
def _torch_allowed_globals() -> dict[str, object]:
    """torch's vetted weights-only allowlist, built once (it is a few hundred entries)."""
    return dict(_torch_weights_only._get_allowed_globals())


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild tensors and plain data, and nothing else.

    Every global a pickle names goes through ``find_class``, so deciding here
    is enough: torch's own weights-only allowlist (tensor rebuild helpers,
    dtypes, storages, OrderedDict), inert stand-ins for known metadata, and a
    refusal for everything else (``os.system``, ``builtins.eval``, ...).
    """

    def find_class(self, module: str, name: str):
        qualified_name = f"{module}.{name}"
        allowed = _torch_allowed_globals()
        if qualified_name in allowed:
            return allowed[qualified_name]
        if qualified_name in INERT_METADATA_GLOBALS:
            return _inert_class(qualified_name)
        raise UnsafeGlobalError(qualified_name)


def _restricted_load(file, **kwargs):
    """``pickle.load`` through the restricted unpickler; torch calls it for legacy-format headers."""
    return RestrictedUnpickler(file, **kwargs).load()


# What torch.load gets as ``pickle_module``: it uses ``.Unpickler`` for the
# object pickle of both formats and ``.load`` for the legacy format's headers.
restricted_pickle = types.ModuleType("maskbench_restricted_pickle")
restricted_pickle.Unpickler = RestrictedUnpickler
restricted_pickle.load = _restricted_load


# ---------------------------------------------------------------------------
# Loading and checking state dicts
# ---------------------------------------------------------------------------


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read the model weights from an MMDetection ``.pth`` without executing pickled code.

    Accepts mmcv (2020, possibly legacy non-zip format) and mmengine
    checkpoints, or a bare state dict. Strips a DataParallel ``module.``
    prefix and widens fp16/bf16 weights to float32, which the CPU model runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; check the path or let maskbench download it")
    try:
        checkpoint = torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle, mmap=False
        )
    except UnsafeGlobalError as err:
        raise CheckpointError(
            f"{path}: refusing to load, the checkpoint's pickle refers to '{err.qualified_name}' "
            "which could run code; only load checkpoints you trust from the official URLs"
        ) from None
    except MemoryError:
        raise  # a board short of RAM must not be told its file is corrupt
    except Exception as err:  # torch, zipfile and pickle each raise their own types for a damaged file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_one_line(err)}); "
            "re-download it (delete the file) or check the path"
        ) from None
    return _normalise_state_dict(_find_state_dict(checkpoint, path), path)


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


def check_state_dict(
    expected: dict[str, torch.Tensor],
    loaded: dict[str, torch.Tensor],
    model_name: str,
    path: Path | str,
) -> None:
    """Raise one CheckpointError line if ``loaded`` does not fit the model whose state is ``expected``.

    ``num_batches_tracked`` is ignored both ways: it only counts training
    steps, old checkpoints lack it, and inference never reads it.
    """
    def counted(key: str) -> bool:
        return not key.endswith("num_batches_tracked")

    missing = sorted(k for k in expected.keys() - loaded.keys() if counted(k))
    unexpected = sorted(k for k in loaded.keys() - expected.keys() if counted(k))
    mismatched = sorted(
        f"{k}: expected {tuple(expected[k].shape)} vs found {tuple(loaded[k].shape)}"
        for k in expected.keys() & loaded.keys()
        if tuple(expected[k].shape) != tuple(loaded[k].shape)
    )
    if not (missing or unexpected or mismatched):
        return

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_first_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_first_few(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({_first_few(mismatched)})")
    expected_count = sum(1 for k in expected if counted(k))
    loaded_count = sum(1 for k in loaded if counted(k))
    if len(missing) > expected_count / 2 or len(unexpected) > loaded_count / 2:
        fix = f"it is probably a checkpoint of another model; use the checkpoint made for {model_name}"
    else:
        fix = f"use the official checkpoint for {model_name} or check --weights"
    raise CheckpointError(f"{path}: checkpoint does not fit {model_name}: {'; '.join(problems)}; {fix}")


def _first_few(items: list[str], shown: int = 5) -> str:
    """Up to ``shown`` items, then 'and N more', to keep the error on one readable line."""
    text = ", ".join(items[:shown])
    return f"{text} and {len(items) - shown} more" if len(items) > shown else text
