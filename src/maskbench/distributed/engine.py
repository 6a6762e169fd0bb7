"""Ray itself: imported only here and in the pipeline (``import maskbench`` and every command
without ``--engine ray`` never load it), joined at ``--address`` / ``RAY_ADDRESS``, or started
locally for the run and stopped after it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

from ..utils.errors import RuntimeNotInstalled

RAY_INSTALL = 'pip install "maskbench[ray]"'


def require_ray() -> ModuleType:
    """The ``ray`` package with Ray Data, or one line naming the install."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, pandas)
    except ImportError as err:
        raise RuntimeNotInstalled(f"--engine ray needs Ray Data ({err.name} is not installed): {RAY_INSTALL}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, cpus_wanted: int) -> Iterator[ModuleType]:
    """Ray, connected: a running session as it is; ``address`` (or ``RAY_ADDRESS``): that
    cluster; else a local Ray with ``cpus_wanted`` CPUs at least (more actors x threads than
    cores oversubscribes them rather than waiting forever), shut down at the end."""
    ray = require_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our progress bar and summary, not Ray Data's
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, cpus_wanted), include_dashboard=False,
                 logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def quiet_data_context(ray: ModuleType) -> None:
    """Ray Data without its own progress bars (the driver shows frames and frames/s)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
