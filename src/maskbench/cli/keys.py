"""``maskbench keys new --out KEYDIR``: a key pair that signs deployment bundles
(``maskbench export ... --bundle DIR --sign KEYDIR/maskbench-signing.key``); the robot trusts the
public one (``python -m maskbench.deploy DIR --trusted-key KEYDIR/maskbench-signing.pub``).
See :mod:`maskbench.pipeline.bundle_keys` and docs/deploy.md."""

from __future__ import annotations

from pathlib import Path


def add_commands(sub) -> None:
    keys = sub.add_parser("keys", help="make the Ed25519 key pair that signs deployment bundles")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    new = actions.add_parser("new", help="write a new private key (mode 0600) and its public key")
    new.add_argument("--out", type=Path, required=True, metavar="KEYDIR", help="folder for the two key files")
    new.set_defaults(run=new_keys_command)


def add_sign_args(parser) -> None:
    """``--sign KEYFILE`` for the commands that write a bundle."""
    parser.add_argument("--sign", type=Path, default=None, metavar="KEYFILE",
                        help="sign the bundle with this Ed25519 private key (maskbench keys new); needs --bundle")


def check_sign_args(args) -> None:
    """Refuse a ``--sign`` without ``--bundle``, or an unusable key, before any model work."""
    if getattr(args, "sign", None) is None:
        return
    from ..pipeline.bundle_keys import load_private_key
    from ..utils.errors import MaskbenchError

    if getattr(args, "bundle", None) is None:
        raise MaskbenchError("--sign signs a bundle: add --bundle DIR")
    load_private_key(args.sign)


def new_keys_command(args) -> int:
    from ..pipeline.bundle_keys import key_id, load_private_key, new_key_pair

    private, public = new_key_pair(args.out)
    print(f"key {key_id(load_private_key(private).public_key())}: private {private} (mode 0600: keep it secret; "
          f"sign with --sign {private}), public {public} (give it to the robot: --trusted-key {public})")
    return 0
