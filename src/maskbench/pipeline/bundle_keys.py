"""Ed25519 keys that sign a deployment bundle (``maskbench keys new``, ``export --sign``) and the
check of a signature against the keys a robot trusts (``maskbench.deploy.load(trusted_keys=...)``).

Ed25519 (the ``cryptography`` package, in the ``deploy`` extra): small keys, deterministic
signatures, no parameters to get wrong. Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo
public), readable by ``openssl pkey``; a key is named by its id, the first 16 hex digits of the
sha256 of its raw 32 public bytes. The private key file is written with mode 0600 and refused
when others can read it (as ssh does). Imports ``cryptography`` only when a key is used, so an
unsigned bundle runs without it. A leaf: errors and files only."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.errors import MaskbenchError, RuntimeNotInstalled
from .manifest import BundleError

PRIVATE_KEY_FILE = "maskbench-signing.key"
PUBLIC_KEY_FILE = "maskbench-signing.pub"
ALGORITHM = "ed25519"


class SignatureError(BundleError):
    """A bundle whose signature is missing, by a key not trusted, or does not match."""


@dataclass(frozen=True)
class Signature:
    """``value``: base64 of the 64-byte Ed25519 signature of the manifest's canonical bytes."""

    key_id: str
    value: str
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "key_id": self.key_id, "value": self.value}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Signature:
        try:
            return cls(str(data["key_id"]), str(data["value"]), str(data["algorithm"]))
        except (TypeError, KeyError):
            raise SignatureError(f"{where}: malformed signature block; re-export and sign the bundle again") from None


@dataclass(frozen=True)
class TrustedKey:
    """A public key the caller trusts, and where it came from (for the messages)."""

    key: Any  # cryptography's Ed25519PublicKey
    key_id: str
    source: str


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise RuntimeNotInstalled('signed bundles need the cryptography package: pip install "maskbench[deploy]" '
                                  '(or pip install cryptography)') from None
    return serialization, ed25519


def key_id(public_key) -> str:
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def new_key_pair(folder: Path) -> tuple[Path, Path]:
    """Write a new private key (mode 0600) and its public key into ``folder``; an existing key
    file is never overwritten (the bundles it signed would no longer verify)."""
    serialization, ed25519 = _crypto()
    folder = Path(folder)
    private_path, public_path = folder / PRIVATE_KEY_FILE, folder / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise MaskbenchError(f"{path}: already exists; keep it (bundles signed with it verify against its "
                                 "public key) or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    public_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: Path):
    """The Ed25519 private key in ``path``, or one line: missing, readable by others, not a key."""
    serialization, ed25519 = _crypto()
    path = Path(path)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as err:
        raise MaskbenchError(f"{path}: cannot read the signing key ({err.strerror}); make one with "
                             "maskbench keys new --out KEYDIR") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise MaskbenchError(f"{path}: not an unencrypted PEM private key ({str(err).splitlines()[0]}); "
                             "make one with maskbench keys new --out KEYDIR") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise MaskbenchError(f"{path}: not an Ed25519 key; make one with maskbench keys new --out KEYDIR")
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MaskbenchError(f"{path}: the private signing key is readable by others (mode {stat.S_IMODE(mode):o}); "
                             f"chmod 600 {path}")
    return key


def load_public_key(path: Path | str) -> TrustedKey:
    serialization, ed25519 = _crypto()
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise MaskbenchError(f"{path}: cannot read the trusted key ({err.strerror})") from None
    except ValueError:
        raise MaskbenchError(f"{path}: not a PEM public key (give the .pub file of maskbench keys new)") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise MaskbenchError(f"{path}: not an Ed25519 public key (give the .pub file of maskbench keys new)")
    return TrustedKey(key, key_id(key), str(path))


def sign(private_key, message: bytes) -> Signature:
    value = base64.b64encode(private_key.sign(message)).decode("ascii")
    return Signature(key_id(private_key.public_key()), value)


def check_signature(signature: Signature | None, message: bytes, trusted: Sequence[TrustedKey], where: str) -> str:
    """Refuse (one line) an unsigned bundle, a key not in ``trusted`` or a signature that does
    not match ``message``; return the trusted key's source."""
    names = ", ".join(f"{key.key_id} ({key.source})" for key in trusted)
    if signature is None:
        raise SignatureError(f"{where}: the bundle is not signed, and only bundles signed by a trusted key "
                             f"({names}) are accepted; export it with --sign KEYFILE")
    if signature.algorithm != ALGORITHM:
        raise SignatureError(f"{where}: signed with {signature.algorithm}, maskbench verifies {ALGORITHM} only; "
                             "re-export and sign the bundle again")
    match = next((key for key in trusted if key.key_id == signature.key_id), None)
    if match is None:
        raise SignatureError(f"{where}: signed by key {signature.key_id}, which is not a trusted key ({names}); "
                             "add its .pub with --trusted-key, or re-sign the bundle with a trusted key")
    from cryptography.exceptions import InvalidSignature

    try:
        match.key.verify(base64.b64decode(signature.value, validate=True), message)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{where}: the signature by key {signature.key_id} does not match the manifest "
                             "(changed after signing, or forged); re-export and sign the bundle again") from None
    return match.source
