"""The torch-free pipeline around a graph: preprocessing, each family's mask decoding,
detections, COCO encoding, graph inputs/outputs, engine sessions and the bundle manifest.

Exactly what a deployed bundle runs (:mod:`maskbench.deploy`), and what the full install runs
around every runtime, so both give the same detections bit for bit. Nothing here imports torch
(``tests/test_import_graph.py`` checks it statically)."""
