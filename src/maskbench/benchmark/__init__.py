"""The benchmark: each model x runtime measured in its own process, results appended as JSONL.

- :mod:`.records`: what one measurement is (:class:`BenchmarkJob` in, :class:`BenchmarkRecord`
  out) and the JSONL file that keeps them (append, resume);
- :mod:`.stats`: latency statistics; :mod:`.memory`: peak RSS and GPU memory;
- :mod:`.worker`: runs one job (``python -m maskbench.benchmark.worker``);
- :mod:`.runner`: runs every job in its own process, records crashes and timeouts, resumes.
"""
