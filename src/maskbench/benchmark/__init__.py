"""The benchmark: each model x runtime measured in its own process, results appended as JSONL.

- :mod:`maskbench.results.records`: what one measurement is (:class:`BenchmarkJob` in,
  :class:`BenchmarkRecord` out) and the JSONL file that keeps them (append, resume); with
  :mod:`maskbench.results.stats` (latency statistics), the contract the report reads;
- :mod:`.memory`: peak RSS and GPU memory;
- :mod:`.worker`: runs one job (``python -m maskbench.benchmark.worker``);
- :mod:`.profiling`: the network's stage times (eager stage by stage, graph runtimes by node);
- :mod:`.runner`: runs every job in its own process, records crashes and timeouts, resumes;
  :mod:`.worker_process`: a worker's files and the record it leaves, however it ended;
- :mod:`.interleave`: interleaved timing, the jobs of a group taking turns round by round
  (:mod:`.control`: the runner's commands to a waiting worker);
- :mod:`.lifeline`: a worker dies with its runner; a runner stopped by a signal stops its worker.
"""
