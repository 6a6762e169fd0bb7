"""Predict over images: a model on a runtime, COCO results written as they come, overlays."""
