"""Which machine made a record, in a few words: records made on several machines are merged into
one report (``maskbench report --results A B``), with a machine column when there is more than one.

The label comes from the record's machine description (:func:`maskbench.utils.machine.describe_environment`):
the CPU model, and the GPU where the run used one. Records of the same job made on two machines
share a key; they are told apart by this label, never collapsed into one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

UNKNOWN_MACHINE = "unknown machine"
R = TypeVar("R")


def machine_label(environment: dict | None) -> str:
    """``"AMD EPYC 9454 + NVIDIA H100"``; ``"unknown machine"`` for a record without a description."""
    environment = environment or {}
    cpu = str(environment.get("cpu") or "").strip()
    gpu = str(environment.get("gpu") or "").strip()
    words = [w for w in (cpu, gpu) if w]
    return " + ".join(words) if words else UNKNOWN_MACHINE


def machines_of(records: Iterable[R], environment: Callable[[R], dict | None]) -> list[str]:
    """The distinct machine labels, in first-seen order."""
    seen: dict[str, None] = {}
    for record in records:
        seen.setdefault(machine_label(environment(record)), None)
    return list(seen)


def latest_per_machine(records: Sequence[R], key: Callable[[R], str],
                       environment: Callable[[R], dict | None]) -> list[R]:
    """The newest record of each (machine, key), in first-seen order."""
    latest: dict[tuple[str, str], R] = {}
    for record in records:
        latest[(machine_label(environment(record)), key(record))] = record
    return list(latest.values())
