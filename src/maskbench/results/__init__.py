"""What a benchmark job measured (records), its statistics and intervals: the one contract
between measuring (:mod:`maskbench.benchmark`) and reporting (:mod:`maskbench.report`)."""
