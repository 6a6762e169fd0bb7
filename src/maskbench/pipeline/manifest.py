"""A deployment bundle's manifest (``manifest.json``): everything the torch-free deployment needs to run
the artifact as the benchmark did, and what it was checked against. Plain JSON, versioned:
a manifest of another format version is refused rather than half-read. A leaf (errors, files):
the export side writes it and :mod:`maskbench.deploy` reads it, and neither imports the other.
Version 2 lists the sha256 of every file of the bundle (``files``) and is sealed and optionally
signed (:mod:`maskbench.pipeline.bundle_seal`); version 3 nests the input format (``input_format``:
:class:`~maskbench.zoo.InputFormat`'s fields by name), so deploy rebuilds it by name, not position."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..utils.errors import MaskbenchError
from ..utils.run_info import run_info
from ..zoo.specs import InputFormat

# 5: batch (a static-batch graph); 4: input_format says how to resize and pad (RF-DETR-Seg);
# 3: input_format nested; 2: every file's sha256 (files), the seal; 1 checked the artifact only
FORMAT_VERSION = 5
READ_AS_CURRENT = frozenset({4})  # older versions that read unchanged (batch: 1, its default)
OLDER_VERSIONS = {1: "it does not cover every file of the bundle", 2: "its input format is flat",
                  3: "its input format does not say how to resize and pad"}
MANIFEST_FILE = "manifest.json"


class BundleError(MaskbenchError):
    """A folder that is not a usable bundle: no or foreign manifest, tampered artifact, another
    runtime version, or a frame the graph was not exported for."""


@dataclass(frozen=True)
class Manifest:
    """``input_hw``: the graph's padded (H, W); ``img_shape``: the resized (h, w) baked in
    (stretch) or ``None`` (keep-ratio: a graph input). ``input_format``: how the model turns an
    image into its input (``mean``/``std`` in the network's channel order).
    ``latency_ms``/``fidelity``: measured when known, else ``None``."""

    model: str
    alias: str
    family: str
    weights: str
    weights_sha256: str
    mode: str
    input_size: tuple[int, int] | None  # the --input-size asked for (w, h), None: the model's default
    input_hw: tuple[int, int]
    img_shape: tuple[int, int] | None
    input_format: InputFormat
    class_names: tuple[str, ...]
    mask_threshold: float
    runtime: str
    runtime_version: str
    precision: str
    threads: int
    artifact: str
    artifact_sha256: str
    output_names: tuple[str, ...]
    extra_files: tuple[str, ...] = ()  # beside the artifact (OpenVINO IR's .bin)
    files: dict[str, str] = field(default_factory=dict)  # every file of the bundle but the manifest and seal: sha256
    latency_ms: float | None = None
    fidelity: dict | None = None
    batch: int = 1  # images per call of the graph (outputs: each image's four, output_names in that order)
    format_version: int = field(default=FORMAT_VERSION)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "manifest") -> Manifest:
        check_format_version(data, where)
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(data) - {"extra_files", "latency_ms", "fidelity", "batch"})
        if missing:
            raise BundleError(f"{where}: not a maskbench bundle manifest (missing {', '.join(missing)})")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in names:
                values[key] = tuple(value) if isinstance(value, list) else value
        values["input_format"] = input_format_from(values["input_format"], where)
        return cls(**values)

    def write(self, folder: Path) -> Path:
        from ..utils.files import atomic_open

        path = Path(folder) / MANIFEST_FILE
        with atomic_open(path) as file:
            json.dump(self.to_dict(), file, indent=1)
        return path

    def run_info(self, where: str) -> dict:
        """predict's ``info`` block for detections this bundle made; ``where``: how it ran."""
        return run_info(self.model, self.weights, self.mode, self.input_size,
                        f"{self.runtime} {self.runtime_version} ({self.precision}, {where})", self.weights_sha256)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls.from_dict(read_manifest_data(folder), str(Path(folder) / MANIFEST_FILE))


def input_format_from(data: Any, where: str) -> InputFormat:
    """The nested ``input_format`` object as an :class:`InputFormat`, its fields by name."""
    names = {f.name for f in fields(InputFormat)}
    if not isinstance(data, dict) or set(data) != names:
        raise BundleError(f"{where}: input_format is not {{{', '.join(sorted(names))}}}; re-export the bundle")
    values: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
    return InputFormat(**values)


def read_manifest_data(folder: Path) -> dict:
    """``manifest.json`` as the JSON object it holds (one line if there is none)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{folder}: not a maskbench bundle (no {MANIFEST_FILE}); make one with "
                          "maskbench export --model NAME --runtime R --bundle DIR")
    return read_bundle_json(path, "manifest")


def read_bundle_json(path: Path, what: str) -> dict:
    """A bundle file that holds one JSON object (``what``: its name in the error line)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BundleError(f"{path}: unreadable {what} ({err}); re-export the bundle") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: not a maskbench bundle {what}; re-export the bundle")
    return data


def check_format_version(data: dict, where: str) -> None:
    """Refuse a manifest of another format version: an older one with the command that rebuilds it."""
    version = data.get("format_version")
    if version == FORMAT_VERSION or version in READ_AS_CURRENT:
        return
    if isinstance(version, int) and version < FORMAT_VERSION:
        reason = OLDER_VERSIONS.get(version, "an older layout")
        raise BundleError(f"{where}: bundle format version {version} is older than this maskbench's {FORMAT_VERSION} "
                          f"({reason}); rebuild it: {rebuild_command(data, where)}")
    raise BundleError(f"{where}: bundle format version {version}, this maskbench reads version {FORMAT_VERSION}; "
                      "re-export the bundle with this maskbench (maskbench export --bundle), or upgrade maskbench")


def rebuild_command(data: dict, where: str) -> str:
    """The ``maskbench export`` that makes this manifest's bundle again (what an old manifest says)."""
    size = data.get("input_size")
    words = ["maskbench export", f"--model {data.get('alias') or data.get('model') or 'MODEL'}",
             f"--runtime {data.get('runtime') or 'RUNTIME'}", f"--precision {data.get('precision') or 'fp32'}"]
    if data.get("mode") == "keep_ratio":
        words.append("--keep-ratio")
    if isinstance(size, list) and len(size) == 2:
        words.append(f"--input-size {size[0]}x{size[1]}")
    words += ["--images FRAMES --out EXPORT_DIR", f"--bundle {Path(where).parent}"]
    return " ".join(words)
