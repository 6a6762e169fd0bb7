"""Compare loaded weights with the model, so that a wrong checkpoint gives one readable line
instead of a wall of ``load_state_dict`` output."""

from __future__ import annotations

from pathlib import Path

import torch

from ..utils.errors import CheckpointError


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
