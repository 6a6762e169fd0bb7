"""The network's stage times in the benchmark (``--stages``): the eager runtimes stage by stage
(``benchmark/worker.py``, on :meth:`~maskbench.runtimes.base.Runtime.stage_model`), the graph
runtimes from their per-node profilers (:mod:`.graph_profile`), each node placed in a stage by
its ONNX node (:mod:`.node_stages`)."""
