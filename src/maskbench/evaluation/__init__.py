"""COCO box/mask AP of a zoo model (on any runtime) or of a results file (issue 7).

Public entry points:

- :func:`evaluate_predictor` (run.py): run a :class:`~maskbench.predict.predictor.Predictor` over a COCO
  dataset and score it; returns an :class:`EvalResult`. The benchmark calls this.
- :func:`score_results` (coco_eval.py): score a COCO results list against an annotation file.
- :func:`ap_difference` (compare.py): AP of one evaluation minus another's (conversion loss).
- :func:`embedded_coco`: the shipped 80-image COCO val2017 example.

Every name is imported on first use: scoring a results file does not load torch (run.py), and
building the ``maskbench`` parser (``evaluation.cli``) loads neither torch nor numpy.
"""

_SOURCES = {
    "CategoryMap": "categories", "CategoryMismatchError": "categories",
    "BACKENDS": "coco_eval", "ApSummary": "coco_eval", "CocoMetrics": "coco_eval", "default_backend": "coco_eval",
    "score_results": "coco_eval",
    "ap_difference": "compare",
    "embedded_coco": "embedded",
    "evaluate_predictor": "run", "EvalResult": "run", "ImageFailure": "run", "EvalTiming": "run",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name in _SOURCES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_SOURCES[name]}"), name)
    raise AttributeError(f"module 'maskbench.evaluation' has no attribute {name!r}")
