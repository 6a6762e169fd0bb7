"""What a benchmark refuses before any worker starts, and the jobs it leaves out.

A worker builds and calibrates its model (tens of seconds) before it builds the runtime, so
everything that can be known without a model is decided here, in the parent, with the
registry's own checks (``runtimes.registry.require_runtime``: the precision table, the device,
the runtime's native-precision checks such as OpenVINO's bf16, its packages and GPU):

- an unknown model, runtime or precision: the run is refused (a typo; nothing is measured);
- a job whose runtime is not installed here (its package or GPU missing): kept. The worker
  refuses it before any model work and records why, with the install command, so the report
  lists it, and the rest of the run goes on;
- a job that can never run here for another reason (that runtime cannot run that precision or
  device, or this CPU lacks the native instructions or the quantizer for it): left out, with a
  one-line reason each (:attr:`JobPlan.left_out`); a cross product such as
  ``--runtimes torch,onnxruntime --precisions fp32,int8`` then runs the pairs that exist;
- when no job of the run could run (every one left out or not installed): the run is refused
  in one line giving each runtime x precision's reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..results.records import BenchmarkJob
from ..utils.errors import MaskbenchError, RuntimeNotInstalled
from ..utils.names import PRECISIONS
from ..zoo import get_spec


class JobPlan(list[BenchmarkJob]):
    """The jobs to run (a plain list of them), with ``left_out``: one line per runtime x
    precision that was left out because it cannot run here."""

    left_out: list[str]

    def __init__(self, jobs: Sequence[BenchmarkJob] = (), left_out: Sequence[str] = ()):
        super().__init__(jobs)
        self.left_out = list(left_out)


def check_names(models: Sequence[str], runtimes: Sequence[str], precisions: Sequence[str]) -> None:
    """Refuse (one line) an unknown model, runtime or precision, or an empty choice."""
    from ..runtimes.registry import RUNTIMES

    for model in models:
        get_spec(model)  # an unknown name: one line listing the zoo
    unknown = [name for name in runtimes if name not in RUNTIMES]
    if unknown:
        raise MaskbenchError(f"unknown runtime(s) {', '.join(unknown)}; choose from: {', '.join(RUNTIMES)}")
    unknown = [name for name in precisions if name not in PRECISIONS]
    if unknown:
        raise MaskbenchError(f"unknown precision(s) {', '.join(unknown)}; choose from: {', '.join(PRECISIONS)}")
    if not (models and runtimes and precisions):
        raise MaskbenchError("nothing to benchmark: give at least one model, one runtime and one precision")


def runnable_plan(jobs: Sequence[BenchmarkJob]) -> JobPlan:
    """``jobs`` less those that can never run here (see the module's rule), or a one-line
    refusal when none of them could run."""
    verdicts = {pair: _verdict(*pair) for pair in dict.fromkeys((job.runtime, job.precision, job.device)
                                                                 for job in jobs)}
    if jobs and all(problem is not None for _, problem in verdicts.values()):
        reasons = "; ".join(f"{runtime} {precision}: {problem}"
                            for (runtime, precision, _), (_, problem) in verdicts.items())
        raise MaskbenchError(f"no job of this benchmark can run here: {reasons}")
    kept = [job for job in jobs if verdicts[job.runtime, job.precision, job.device][0]]
    left_out = [f"{runtime} {precision}: {problem}"
                for (runtime, precision, _), (keep, problem) in verdicts.items() if not keep]
    return JobPlan(kept, left_out)


def _verdict(runtime: str, precision: str, device: str | None) -> tuple[bool, str | None]:
    """(keep the job?, why it cannot run here or None)."""
    from ..runtimes.registry import require_runtime, runtime_problem

    try:
        require_runtime(runtime, precision, device)
    except RuntimeNotInstalled as err:
        return runtime_problem(runtime) is not None, str(err)  # the runtime itself missing: the worker records it
    except MaskbenchError as err:
        return False, str(err)
    return True, None
