"""A bundle is the files that were measured and approved, and nothing else.

``manifest.json`` (format 2) lists the sha256 of every file of the bundle; ``seal.json`` beside
it holds the sha256 of the manifest's canonical form (its JSON object with sorted keys, compact
separators, UTF-8) and, when the bundle was exported with ``--sign KEYFILE``, an Ed25519
signature of that canonical form (:mod:`maskbench.pipeline.bundle_keys`). So the manifest's measured
latency and fidelity, its preprocessing and class names are covered as much as the artifact.

:func:`verify_bundle` refuses in one line naming the file: a manifest edited after export (its
digest differs), a file added, removed or changed, and, given trusted keys, an unsigned bundle,
a key not trusted or a signature that does not match. The digest alone catches accidents and
casual edits (whoever can rewrite the manifest can rewrite the seal); a fleet that must know who
approved a bundle passes ``trusted_keys``. Torch-free: deploy verifies with it, export seals with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..utils.files import atomic_open, file_sha256
from .bundle_keys import Signature, TrustedKey, check_signature, load_public_key, sign
from .manifest import (
    MANIFEST_FILE,
    BundleError,
    Manifest,
    check_format_version,
    read_bundle_json,
    read_manifest_data,
)

SEAL_FILE = "seal.json"


def canonical_bytes(data: Mapping) -> bytes:
    """The manifest as hashed and signed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_sha256(data: Mapping) -> str:
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def file_digests(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of the named files of ``folder``, for the manifest's ``files``."""
    return {name: file_sha256(Path(folder) / name) for name in sorted(names)}


@dataclass(frozen=True)
class Seal:
    manifest_sha256: str
    signature: Signature | None = None

    def to_dict(self) -> dict:
        return {"manifest_sha256": self.manifest_sha256,
                "signature": self.signature.to_dict() if self.signature else None}

    @classmethod
    def read(cls, folder: Path) -> Seal:
        path = Path(folder) / SEAL_FILE
        if not path.is_file():
            raise BundleError(f"{folder}: the bundle is not sealed (no {SEAL_FILE}: its export was interrupted, or "
                              "it was assembled by hand); re-export the bundle")
        data = read_bundle_json(path, "seal")
        if "manifest_sha256" not in data:
            raise BundleError(f"{path}: unreadable seal (no manifest_sha256); re-export the bundle")
        digest = str(data["manifest_sha256"])
        signature = data.get("signature")
        return cls(digest, Signature.from_dict(signature, str(path)) if signature is not None else None)


def seal_bundle(folder: Path, manifest: Manifest, private_key=None) -> Path:
    """Write ``manifest.json``, then ``seal.json`` (both atomically; the seal last, so a folder
    with a seal holds the manifest it seals); ``private_key``: sign it (:func:`load_private_key`)."""
    data = manifest.to_dict()
    message = canonical_bytes(data)
    signature = sign(private_key, message) if private_key is not None else None
    path = manifest.write(folder)
    with atomic_open(Path(folder) / SEAL_FILE) as file:
        json.dump(Seal(hashlib.sha256(message).hexdigest(), signature).to_dict(), file, indent=1)
    return path


@dataclass(frozen=True)
class VerifiedBundle:
    """What :func:`verify_bundle` checked: the manifest, and who signed it (``None``: unsigned)."""

    manifest: Manifest
    signed_by: str | None  # key id
    trusted_source: str | None  # the trusted key file that verified it; None: not checked

    def describe(self, folder: Path) -> str:
        m = self.manifest
        if self.trusted_source:
            who = f"signed by key {self.signed_by}, verified with {self.trusted_source}"
        elif self.signed_by:
            who = f"signed by key {self.signed_by} (not checked: give --trusted-key)"
        else:
            who = "unsigned"
        latency = f"{m.latency_ms:.1f} ms measured" if m.latency_ms is not None else "latency not measured"
        return (f"{folder}: ok: {len(m.files)} file(s) match {MANIFEST_FILE}, which matches its seal; {who}; "
                f"{m.alias} {m.runtime} {m.runtime_version} {m.precision}, {latency}")


def verify_bundle(folder: Path | str, trusted_keys: Sequence[Path | str | TrustedKey] | None = None) -> VerifiedBundle:
    """Check ``folder`` without running it: format version, the manifest against its seal, the
    signature (when ``trusted_keys`` is given: paths of public key files), every file's sha256
    and no file besides. Each refusal is one :class:`BundleError` line naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a folder; give the folder written by maskbench export --bundle")
    data = read_manifest_data(folder)
    where = str(folder / MANIFEST_FILE)
    check_format_version(data, where)
    seal = Seal.read(folder)
    message = canonical_bytes(data)
    found = hashlib.sha256(message).hexdigest()
    if found != seal.manifest_sha256:
        raise BundleError(f"{where}: changed after export (sha256 of its content {found[:12]}... differs from "
                          f"{SEAL_FILE}'s {seal.manifest_sha256[:12]}...); re-export the bundle")
    source = None
    if trusted_keys is not None:
        keys = [key if isinstance(key, TrustedKey) else load_public_key(key) for key in trusted_keys]
        if not keys:
            raise BundleError("trusted_keys is empty: no bundle could be accepted; give the .pub file(s) of the "
                              "signing key(s)")
        source = check_signature(seal.signature, message, keys, str(folder))
    manifest = Manifest.from_dict(data, where)
    _check_files(folder, manifest)
    return VerifiedBundle(manifest, seal.signature.key_id if seal.signature else None, source)


def _check_files(folder: Path, manifest: Manifest) -> None:
    listed = dict(manifest.files)
    if manifest.artifact not in listed or any(name not in listed for name in manifest.extra_files):
        raise BundleError(f"{folder / MANIFEST_FILE}: does not cover its own artifact; re-export the bundle")
    odd = next((name for name in listed if Path(name).name != name or name in ("", ".", "..")), None)
    if odd is not None:
        raise BundleError(f"{folder / MANIFEST_FILE}: names a file outside the bundle ({odd}); re-export the bundle")
    present = sorted(path.name for path in folder.iterdir() if path.name not in (MANIFEST_FILE, SEAL_FILE))
    added = [name for name in present if name not in listed]
    if added:
        raise BundleError(f"{folder / added[0]}: not part of the bundle (added after export{_more(added)}); "
                          "remove it, or re-export the bundle")
    for name, expected in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{folder}: the bundle's file {name} is missing; re-export the bundle")
        found = file_sha256(path)
        if found != expected:
            raise BundleError(f"{path}: sha256 {found[:12]}... differs from the manifest's {expected[:12]}... "
                              "(changed or corrupt); re-export the bundle")


def _more(names: Sequence[str]) -> str:
    return f"; {len(names) - 1} more: {', '.join(names[1:4])}" if len(names) > 1 else ""
