"""Predict and evaluate over many frames on Ray Data (``--engine ray``; docs/distributed.md).

The driver builds the model once as a deployment bundle and ships its bytes to the actors;
each actor loads it once, decodes and predicts its frames and returns COCO entries with RLE
masks; the driver writes them to shards as they arrive and merges them into predict's files.
Ray is imported only when a run starts (``pip install "maskbench[ray]"``)."""

from .ray_predict import RayOptions, RaySummary, predict_on_ray
from .shipping import GRAPH_RUNTIMES, ModelChoice

__all__ = ["GRAPH_RUNTIMES", "ModelChoice", "RayOptions", "RaySummary", "predict_on_ray"]
