"""The execution configurations ``--config`` names: ``sync``, ``streams:N`` (``streams`` alone:
the runtime's throughput hint chooses N), ``batch``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..utils.errors import MaskbenchError


class ConfigKind(str, Enum):
    SYNC = "sync"
    STREAMS = "streams"
    BATCH = "batch"


@dataclass(frozen=True)
class ExecConfig:
    kind: ConfigKind
    streams: int | None = None  # STREAMS: None lets OpenVINO's throughput hint choose

    def __str__(self) -> str:
        if self.kind is ConfigKind.STREAMS:
            return f"streams:{self.streams}" if self.streams else "streams"
        return self.kind.value


def parse_config(text: str) -> ExecConfig:
    kind, _, count = text.strip().partition(":")
    try:
        config_kind = ConfigKind(kind)
    except ValueError:
        raise MaskbenchError(f"--config {text}: give sync, streams:N (or streams) or batch") from None
    if config_kind is not ConfigKind.STREAMS:
        if count:
            raise MaskbenchError(f"--config {text}: only streams takes a number (streams:2)")
        return ExecConfig(config_kind)
    if not count:
        return ExecConfig(config_kind)
    if not count.isdigit() or int(count) < 1:
        raise MaskbenchError(f"--config {text}: the number of streams must be 1 or more (streams:2)")
    return ExecConfig(config_kind, int(count))
