"""The peaks a benchmark run needs, measured before any worker starts: the CPU's at each thread
count its CPU jobs use (:mod:`.peak`), and each GPU's its jobs name (:mod:`.peak_cuda`, in a
process of its own). Workers only read the caches, so no probe runs while a job is timed."""

from __future__ import annotations

from . import peak, peak_cuda


def on_the_cpu(job) -> bool:
    """Whether a job's rows run on this CPU (and so get a share of its peak): a CPU device, or
    none named for a runtime that runs on the CPU (torch without one takes a GPU where there is
    one: then the probe was a few seconds for nothing)."""
    from ..runtimes.registry import CPU, RUNTIMES

    if job.device:
        return str(job.device).startswith(CPU)
    info = RUNTIMES.get(job.runtime)
    return info is not None and any(CPU in devices for devices in info.precisions.values())


def peaks_for_jobs(jobs) -> list[str]:
    """Make sure those peaks are cached (probing where they are not); one line each for the run's
    output. A probe that fails costs the rows their share of peak, never the run."""
    from ..utils.packages import importable

    gpus = sorted({str(job.device) for job in jobs if str(job.device or "").startswith("cuda")})
    lines = [peak_cuda.probe_in_subprocess(device) for device in gpus]
    if not importable("openvino"):
        return lines
    for count in sorted({int(job.threads or peak.default_threads()) for job in jobs if on_the_cpu(job)}):
        try:
            measured = peak.machine_peak(count)
        except Exception as err:  # noqa: BLE001 - the benchmark goes on without it
            lines.append(f"peak ({count} threads): not measured: {type(err).__name__}: {str(err).splitlines()[0]}")
            continue
        lines.append(f"peak ({count} threads, products and convolutions in {measured.runtime}): " + ", ".join(
            f"{p.precision} {p.gflops:,.0f} {'GOP/s' if p.precision == 'int8' else 'GFLOP/s'}"
            if p.gflops is not None else f"{p.precision} -" for p in measured.peaks)
            + ("" if peak.cached_peak(count) else _not_kept(measured)))
    return lines


def _not_kept(measured: peak.MachinePeak) -> str:
    others = f", other processes kept {measured.others_busy_cores:.2f} cores busy" \
        if measured.others_busy_cores is not None else ""
    load = f"load average {measured.load_average:.1f}" if measured.load_average is not None else "load unknown"
    return (f"; the machine was busy while probing ({load}{others}): not kept, so this run's rows get no "
            "share of peak (probe again on a quiet machine: python -m maskbench.benchmark.peak --refresh)")
