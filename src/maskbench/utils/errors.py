"""Errors that reach the user as one line: what went wrong, with which file, and the fix."""


class MaskbenchError(Exception):
    """Base of all user-facing errors; the CLI prints ``str(err)`` on one line and goes on."""


class ImageError(MaskbenchError):
    """An input image that cannot be decoded or is unsupported."""


class CheckpointError(MaskbenchError):
    """A checkpoint that is missing, corrupt, tampered with, unsafe, or of another model."""


class DownloadError(MaskbenchError):
    """A checkpoint download that failed (offline, HTTP error, hash mismatch)."""


class UnknownModelError(MaskbenchError):
    """A model name that is not in the zoo."""


class RuntimeNotInstalled(MaskbenchError):
    """A runtime (or ONNX export) whose Python package, or GPU, is missing; the message says how
    to get it."""


class OutputFolderBusy(MaskbenchError):
    """An output folder another maskbench run is writing to (``out_lock``): the message names the
    holding process and the fix."""


def one_line(reason: object) -> str:
    """``str(reason)`` squeezed onto one line, since errors print as a single line."""
    return " ".join(str(reason).split()) or type(reason).__name__
