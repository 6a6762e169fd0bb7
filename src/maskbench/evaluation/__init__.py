"""COCO box/mask AP of a zoo model (on any runtime) or of a results file (issue 7).

Public entry points:

- :func:`evaluate_predictor` (run.py): run a :class:`~maskbench.predict.Predictor` over a COCO
  dataset and score it; returns an :class:`EvalResult`. The benchmark calls this.
- :func:`score_results` (coco_eval.py): score a COCO results list against an annotation file.
- :func:`ap_difference` (compare.py): AP of one evaluation minus another's (conversion loss).
- :func:`embedded_coco`: the shipped 80-image COCO val2017 example.

Names from run.py are imported on first use, so scoring a results file does not load torch.
"""

from .categories import CategoryMap, CategoryMismatchError
from .coco_eval import BACKENDS, ApSummary, CocoMetrics, default_backend, score_results
from .compare import ap_difference
from .embedded import embedded_coco

_FROM_RUN = ("evaluate_predictor", "EvalResult", "ImageFailure", "EvalTiming")

__all__ = ["BACKENDS", "ApSummary", "CategoryMap", "CategoryMismatchError", "CocoMetrics", "ap_difference",
           "default_backend", "embedded_coco", "score_results", *_FROM_RUN]


def __getattr__(name: str):
    if name in _FROM_RUN:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module 'maskbench.evaluation' has no attribute {name!r}")
