"""What a benchmark record keeps about the machine: :func:`maskbench.machine.describe_environment`
(one description, shared with ``check-conversion``), named here because the worker imports it
from this module."""

from __future__ import annotations

from ..machine import describe_environment

__all__ = ["describe_environment"]
