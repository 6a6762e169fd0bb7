"""Download an official checkpoint into the cache: resumable, verified against the sha256
prefix that MMDetection (like torch.hub) puts in the file name (or the MD5 rfdetr lists),
usable offline once there."""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..utils.errors import DownloadError, one_line
from ..utils.files import cache_dir as _cache_dir
from ..utils.files import file_digest

_CHUNK_BYTES = 1 << 20  # download read size
_USER_AGENT = "maskbench/0.1 (+checkpoint download)"
# MMDetection names end in "-<sha256 prefix>.pth", the torch.hub convention.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

# ---------------------------------------------------------------------------
# Cache location and URL conventions
# ---------------------------------------------------------------------------


def checkpoint_cache_dir() -> Path:
    """Where downloaded checkpoints live: ``checkpoints/`` in maskbench's cache
    (:func:`maskbench.utils.files.cache_root`: ``$MASKBENCH_CACHE``, e.g. an SD card or NFS share on
    a board with a small root filesystem, else the XDG cache)."""
    return _cache_dir("checkpoints")


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


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------


class _TransferCut(Exception):
    """The server closed the connection before sending everything it announced."""


def download_checkpoint(
    url: str,
    sha256_prefix: str | None,
    cache_dir: Path | None = None,
    progress: bool = True,
    timeout: float = 30,
    md5: str | None = None,
) -> Path:
    """Return the path of the verified checkpoint at ``url``, downloading it if needed.

    A cached file whose hash matches is returned without touching the network,
    so the tool works offline once a checkpoint is in place. Downloads go to
    ``<name>.part`` and resume from it with an HTTP Range request, because
    checkpoints are 100-500 MB and boards often sit on flaky links. Only a
    file whose sha256 starts with ``sha256_prefix`` (or, where the publisher lists
    an MD5 instead, as rfdetr does, whose MD5 is ``md5``) is renamed into place.
    """
    if sha256_prefix is not None:
        algorithm, expected_prefix = "sha256", sha256_prefix.lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", expected_prefix):
            raise ValueError(f"sha256_prefix must be 8 to 64 hex digits, got {sha256_prefix!r}")
    elif md5 is not None and re.fullmatch(r"[0-9a-f]{32}", md5.lower()):
        algorithm, expected_prefix = "md5", md5.lower()
    else:
        raise ValueError(f"give a sha256 prefix or a 32-digit md5 for {url}, got {md5!r}")
    cache_dir = Path(cache_dir) if cache_dir is not None else checkpoint_cache_dir()
    final_path = cache_dir / checkpoint_file_name(url)
    part_path = final_path.with_name(final_path.name + ".part")

    if final_path.is_file() and file_digest(final_path, algorithm).startswith(expected_prefix):
        return final_path
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"cannot create the checkpoint cache {cache_dir} ({one_line(err)}); "
            "set MASKBENCH_CACHE to a writable folder"
        ) from None

    try:
        _download_to_part(url, part_path, progress, timeout)
    except urllib.error.HTTPError as err:
        raise _cannot_download(url, f"HTTP {err.code} {err.reason}", final_path) from None
    except urllib.error.URLError as err:
        raise _cannot_download(url, one_line(err.reason), final_path) from None
    except (_TransferCut, http.client.HTTPException, OSError) as err:
        raise _cannot_download(url, one_line(err), final_path) from None

    actual = file_digest(part_path, algorithm)
    if not actual.startswith(expected_prefix):
        part_path.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: downloaded file has {algorithm} {actual[:len(expected_prefix)]}..., expected {expected_prefix}; "
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

