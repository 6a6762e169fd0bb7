"""``python -m maskbench.cli``."""

from .main import main

raise SystemExit(main())
