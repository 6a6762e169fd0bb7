"""Pick a model under a budget: the most accurate record that fits, and why.

Rule: among the ok records that fit every budget given, the highest AP wins (the measured AP
when the benchmark evaluated it, else the zoo's published one; the sentence says which); on a
tie, the lower mean end-to-end latency; when that latency difference is inside the measurement's
interval (the runner-up's latency ratio interval contains 1, :mod:`maskbench.results.intervals`), the
sentence says "tie within measurement" instead of claiming the pick is faster. Budgets:

- latency: the end-to-end mean per image (the study's number), in ms;
- GPU memory: the process's GPU memory (NVML, else torch's CUDA peak). A CPU record uses none
  and fits; a GPU record without a measurement does not (unknown is not "small");
- host memory: the steady RSS while timing (export/compile happen once, ahead of time), else
  the whole-process peak.

Fidelity floors: ``min_mask_iou`` and ``max_ap_drop`` apply to records that carry
``mean_mask_iou`` / ``ap_drop`` (``benchmark --fidelity``: agreement with fp32 eager PyTorch;
``ap_drop`` needs ``--coco`` too); a record without them is not filtered, and a note says the
floor was unchecked for it. With a floor, the precisions and runtimes of one model that pass it
count as equally accurate (the model's best AP among them), so the fastest of them is picked:
the floor is the accuracy the user accepts to lose for speed.
Memory sizes are MiB; "GB" and "GiB" both mean 1024 MiB, as GPU cards are sold ("6 GB").
A pick measured under load (:func:`maskbench.results.machine_load.under_load_reason`) is still picked,
on the numbers it has, and the sentence says so: its latency may be lower on a quiet machine,
and the budget it was judged against should be checked again there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from maskbench.report.pareto import (
    METRICS,
    check_metric,
    mean_latency_ms,
    metric_value,
    pareto_front,
    point_label,
    ranked_ap,
    ranked_latency_ms,
)
from maskbench.results.intervals import TIE, Comparison, compare_records
from maskbench.results.machine_load import under_load_reason
from maskbench.results.records import BenchmarkRecord

_MEMORY_UNITS = {"b": 1 / 1024**2, "kb": 1 / 1024, "kib": 1 / 1024, "k": 1 / 1024, "mb": 1.0, "mib": 1.0,
                 "m": 1.0, "gb": 1024.0, "gib": 1024.0, "g": 1024.0, "tb": 1024.0**2, "tib": 1024.0**2}
_TIME_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "sec": 1000.0, "min": 60_000.0}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]+)\s*$", re.IGNORECASE)


def _parse(text: str, units: dict[str, float], kind: str, example: str) -> float:
    match = _QUANTITY.match(str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in units:
        raise ValueError(f"'{text}' is not a {kind}; write a number and a unit ({', '.join(units)}), e.g. {example}")
    return float(match.group(1)) * units[unit]


def parse_memory_mb(text: str) -> float:
    """``"6GB"``, ``"6 GiB"``, ``"512MB"`` -> MiB."""
    return _parse(text, _MEMORY_UNITS, "memory size", "6GB or 512MB")


def parse_latency_ms(text: str) -> float:
    """``"120ms"``, ``"1.2s"`` -> milliseconds."""
    return _parse(text, _TIME_UNITS, "latency", "120ms or 1.2s")


def format_mb(mb: float) -> str:
    return f"{mb / 1024:.3g} GiB" if mb >= 1024 else f"{mb:.0f} MiB"


def gpu_memory_mb(record: BenchmarkRecord) -> float | None:
    """GPU memory the record used: 0 on the CPU, None when a GPU run was not measured."""
    measured = record.gpu_memory_mb if record.gpu_memory_mb is not None else record.torch_cuda_peak_mb
    if measured is not None:
        return measured
    return 0.0 if not str(record.device).startswith("cuda") else None


def host_memory_mb(record: BenchmarkRecord) -> float | None:
    return record.steady_rss_mb if record.steady_rss_mb is not None else record.peak_rss_mb


@dataclass
class Recommendation:
    metric: str
    front: list[BenchmarkRecord]  # Pareto front, fastest first
    fitting: list[BenchmarkRecord]  # within every budget, best first
    rejected: list[tuple[BenchmarkRecord, str]]  # (record, why it does not fit)
    pick: BenchmarkRecord | None
    reason: str  # the human sentence
    budget: str  # the budget in words, "" when none was given
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Several lines for the terminal: front, what fits, the pick and why."""
        lines = [f"metric: {METRICS[self.metric]}" + (f"; budget: {self.budget}" if self.budget else "; no budget")]
        lines.append("Pareto front (latency vs AP), fastest first:")
        lines += [f"  {_summary(r, self.metric)}" for r in self.front] or ["  (no ok record with latency and AP)"]
        lines.append(f"fits the budget ({len(self.fitting)}):")
        lines += [f"  {_summary(r, self.metric)}" for r in self.fitting] or ["  none"]
        if self.rejected:
            lines.append("over budget:")
            lines += [f"  {point_label(r)}: {why}" for r, why in self.rejected]
        lines += self.notes
        lines.append(("pick: " if self.pick else "no pick: ") + self.reason)
        return "\n".join(lines)


def _ap_text(record: BenchmarkRecord, metric: str) -> str:
    value, source = metric_value(record, metric)
    return f"{METRICS[metric]} {value:.1f} ({source})"


def _summary(record: BenchmarkRecord, metric: str) -> str:
    return f"{point_label(record)}: {_ap_text(record, metric)}, {mean_latency_ms(record):.0f} ms mean"


@dataclass(frozen=True)
class FidelityFloor:
    """The accuracy a user accepts to lose for speed (``--min-mask-iou``, ``--max-ap-drop``),
    judged on a record's fidelity measurements (``benchmark --fidelity [--coco]``); the
    benchmark's pick and the rig's (:mod:`maskbench.report.rig_recommend`) apply it alike."""

    min_mask_iou: float | None = None
    max_ap_drop: float | None = None

    def given(self) -> bool:
        return self.min_mask_iou is not None or self.max_ap_drop is not None

    def words(self) -> list[str]:
        words = [f"mean mask IoU >= {self.min_mask_iou:g}"] if self.min_mask_iou is not None else []
        return words + ([f"AP drop <= {self.max_ap_drop:g}"] if self.max_ap_drop is not None else [])

    def failures(self, mean_mask_iou: float | None, ap_drop: float | None) -> list[str]:
        """The measurements below the floor, in words (an unmeasured one fails nothing)."""
        why = []
        if self.min_mask_iou is not None and mean_mask_iou is not None and mean_mask_iou < self.min_mask_iou:
            why.append(f"mean mask IoU {mean_mask_iou:.3f} < {self.min_mask_iou:g}")
        if self.max_ap_drop is not None and ap_drop is not None and ap_drop > self.max_ap_drop:
            why.append(f"AP drop {ap_drop:.2f} > {self.max_ap_drop:g}")
        return why

    def unchecked(self, mean_mask_iou: float | None, ap_drop: float | None) -> bool:
        """A measurement the floor needs is missing."""
        return (self.min_mask_iou is not None and mean_mask_iou is None) or \
            (self.max_ap_drop is not None and ap_drop is None)

    def how(self) -> str:
        """The command that measures what the floor needs."""
        return "benchmark --fidelity" + (" --coco" if self.max_ap_drop is not None else "")


def _budget_words(max_gpu_memory_mb, max_memory_mb, max_latency_ms, floor: FidelityFloor) -> str:
    words = []
    if max_gpu_memory_mb is not None:
        words.append(f"GPU memory <= {format_mb(max_gpu_memory_mb)}")
    if max_memory_mb is not None:
        words.append(f"host memory <= {format_mb(max_memory_mb)}")
    if max_latency_ms is not None:
        words.append(f"latency <= {max_latency_ms:g} ms")
    return ", ".join(words + floor.words())


def _why_not(record: BenchmarkRecord, max_gpu_memory_mb, max_memory_mb, max_latency_ms,
             floor: FidelityFloor) -> list[str]:
    """Every budget the record breaks, in words; empty when it fits."""
    why = []
    latency = mean_latency_ms(record)
    if max_latency_ms is not None and latency > max_latency_ms:
        why.append(f"latency {latency:.0f} ms > {max_latency_ms:g} ms")
    if max_gpu_memory_mb is not None:
        gpu = gpu_memory_mb(record)
        if gpu is None:
            why.append("GPU memory not measured")
        elif gpu > max_gpu_memory_mb:
            why.append(f"GPU memory {format_mb(gpu)} > {format_mb(max_gpu_memory_mb)}")
    if max_memory_mb is not None:
        host = host_memory_mb(record)
        if host is None:
            why.append("host memory not measured")
        elif host > max_memory_mb:
            why.append(f"host memory {format_mb(host)} > {format_mb(max_memory_mb)}")
    return why + floor.failures(record.mean_mask_iou, record.ap_drop)


def recommend(
    records: Sequence[BenchmarkRecord],
    *,
    max_gpu_memory_mb: float | None = None,
    max_memory_mb: float | None = None,
    max_latency_ms: float | None = None,
    metric: str = "mask_ap",
    min_mask_iou: float | None = None,
    max_ap_drop: float | None = None,
) -> Recommendation:
    """The Pareto front, the records within budget and the pick (see the module's rule)."""
    check_metric(metric)
    floor = FidelityFloor(min_mask_iou, max_ap_drop)
    limits = (max_gpu_memory_mb, max_memory_mb, max_latency_ms, floor)
    budget = _budget_words(*limits)
    candidates = [r for r in records if r.ok and mean_latency_ms(r) is not None]
    notes = []
    unranked = [r for r in candidates if metric_value(r, metric)[0] is None]
    if unranked:
        notes.append(f"no {METRICS[metric]} for {', '.join(point_label(r) for r in unranked)}: not ranked")
    candidates = [r for r in candidates if r not in unranked]
    if floor.given():
        unchecked = [r for r in candidates if floor.unchecked(r.mean_mask_iou, r.ap_drop)]
        if unchecked:
            notes.append(f"fidelity floor not checked for {', '.join(point_label(r) for r in unchecked)}: no "
                         f"fidelity measurement in the record (measure it with {floor.how()})")
    fitting, rejected = [], []
    for record in candidates:
        why = _why_not(record, *limits)
        if why:
            rejected.append((record, "; ".join(why)))
        else:
            fitting.append(record)
    rank = _floor_rank(fitting, metric) if floor.given() else {id(r): ranked_ap(r, metric) for r in fitting}
    fitting.sort(key=lambda r: (-rank[id(r)], ranked_latency_ms(r)))
    front = pareto_front(candidates, metric)
    pick = fitting[0] if fitting else None
    reason = (_why_pick(pick, fitting, rejected, metric, budget, max_gpu_memory_mb is not None) if pick
              else _why_nothing(candidates, metric, budget, records, max_gpu_memory_mb, max_memory_mb))
    tie = _latency_tie(fitting, rank)
    if pick is not None and floor.given() and rank[id(pick)] > ranked_ap(pick, metric):
        chosen = "this is the fastest" if tie is None else "this one is listed first"
        reason = (f"{reason[:-1]}; above the fidelity floor the precisions of {pick.alias or pick.model} count as "
                  f"equally accurate (its best: {METRICS[metric]} {rank[id(pick)]:.1f}), and {chosen}.")
    if tie is not None:
        other, comparison = tie
        how = "interleaved in the same rounds" if comparison.paired else "timed in separate blocks"
        reason += (f" It is a {TIE} with the equally accurate {point_label(other)} ({ranked_latency_ms(other):.0f} ms "
                   f"mean): latency ratio {comparison.ratio.text(3)} (95 % interval, {how}) contains 1, so neither "
                   "is faster on these numbers.")
    if pick is not None:
        reason += _precision_words(pick, fitting, candidates)
    load = under_load_reason(pick) if pick is not None else None
    if load:
        reason += (f" It was measured under load ({load}): its latency may be lower on a quiet machine; measure it "
                   "again with the machine idle before relying on the budget.")
    return Recommendation(metric, front, fitting, rejected, pick, reason, budget, notes)


def _fidelity_words(record: BenchmarkRecord) -> str:
    parts = []
    if record.mean_mask_iou is not None:
        parts.append(f"mean mask IoU {record.mean_mask_iou:.3f} with fp32")
    if record.ap_drop is not None:
        parts.append(f"AP drop {record.ap_drop:.1f}")
    return ", ".join(parts) or "fidelity not measured (benchmark --fidelity)"


def _precision_words(pick: BenchmarkRecord, fitting: Sequence[BenchmarkRecord],
                     candidates: Sequence[BenchmarkRecord]) -> str:
    """When a reduced precision is the better pick, and at what fidelity (issue 29): a reduced
    pick against its model's fastest fp32 record; an fp32 pick against the fastest reduced
    precision of its model that fits the budget but lost on accuracy, with the floor that accepts it."""
    model = pick.model or pick.alias
    same = [r for r in candidates if (r.model or r.alias) == model and r is not pick]
    if pick.precision != "fp32":
        fp32 = [r for r in same if r.precision == "fp32"]
        if not fp32:
            return f" Its {pick.precision} fidelity: {_fidelity_words(pick)} (no fp32 record of it to compare speed)."
        base = min(fp32, key=ranked_latency_ms)
        ratio = ranked_latency_ms(base) / ranked_latency_ms(pick)
        return (f" Reduced precision is the better pick here: {ratio:.2f}x the speed of its fastest fp32 "
                f"({point_label(base)}, {ranked_latency_ms(base):.0f} ms) at {_fidelity_words(pick)}.")
    faster = [r for r in same if r.precision != "fp32" and r in fitting
              and ranked_latency_ms(r) < ranked_latency_ms(pick)]
    if not faster:
        return ""
    best = min(faster, key=ranked_latency_ms)
    floors = []
    if best.mean_mask_iou is not None:
        floors.append(f"--min-mask-iou {math.floor(best.mean_mask_iou * 1000) / 1000:g}")
    if best.ap_drop is not None:
        floors.append(f"--max-ap-drop {math.ceil(best.ap_drop * 10) / 10:g}")
    accept = f"; {' or '.join(floors)} accepts that loss" if floors else ""
    return (f" A reduced precision is faster: {point_label(best)} at {ranked_latency_ms(best):.0f} ms "
            f"({ranked_latency_ms(pick) / ranked_latency_ms(best):.2f}x) with {_fidelity_words(best)}{accept}.")


def _latency_tie(fitting: Sequence[BenchmarkRecord],
                 rank: dict[int, float]) -> tuple[BenchmarkRecord, Comparison] | None:
    """The runner-up and the comparison when latency decided the pick (the runner-up is as
    accurate, by AP or by the fidelity floor's rank) and the two cannot be told apart
    (:mod:`maskbench.results.intervals`); None otherwise, or without per-round timings."""
    if len(fitting) < 2 or rank[id(fitting[0])] != rank[id(fitting[1])]:
        return None
    comparison = compare_records(fitting[0], fitting[1])
    return (fitting[1], comparison) if comparison is not None and comparison.tie else None


def _floor_rank(fitting: Sequence[BenchmarkRecord], metric: str) -> dict[int, float]:
    """id(record) -> the best AP of its model among the records that pass the floor."""
    best: dict[str, float] = {}
    for record in fitting:
        model = record.model or record.alias
        best[model] = max(best.get(model, float("-inf")), ranked_ap(record, metric))
    return {id(r): best[r.model or r.alias] for r in fitting}


def _memory_words(record: BenchmarkRecord, gpu_asked: bool) -> str:
    gpu, host = gpu_memory_mb(record), host_memory_mb(record)
    words = []
    if str(record.device).startswith("cuda"):
        words.append(f"GPU memory {format_mb(gpu)}" if gpu is not None else "GPU memory not measured")
    elif gpu_asked:
        words.append("on the CPU (no GPU memory)")
    if host is not None:
        words.append(f"host memory {format_mb(host)}")
    return ", ".join(words)


def _why_pick(pick, fitting, rejected, metric, budget, gpu_asked) -> str:
    ap, source = metric_value(pick, metric)
    source_words = "measured" if source == "measured" else "zoo, published for the official weights"
    name = f"{pick.alias} ({pick.backbone})" if pick.backbone and pick.alias else (pick.alias or pick.backbone)
    sentence = (f"{name} on {pick.runtime} {pick.precision}: {METRICS[metric]} {ap:.1f} "
                f"({source_words}), {ranked_latency_ms(pick):.0f} ms mean")
    memory = _memory_words(pick, gpu_asked)
    sentence += f", {memory}" if memory else ""
    sentence += f", fits {budget}" if budget else " (no budget given: the most accurate)"
    faster = [r for r in fitting if ranked_latency_ms(r) < ranked_latency_ms(pick)]
    if faster:
        fastest = min(faster, key=ranked_latency_ms)
        sentence += (f"; the faster {point_label(fastest)} ({ranked_latency_ms(fastest):.0f} ms) is below it in "
                     f"{METRICS[metric]} ({ranked_ap(fastest, metric):.1f})")
    better = [(r, why) for r, why in rejected if ranked_ap(r, metric) > ranked_ap(pick, metric)]
    if better:
        best, why = max(better, key=lambda item: ranked_ap(item[0], metric))
        sentence += (f"; the more accurate {point_label(best)} ({ranked_ap(best, metric):.1f}) "
                     f"is over budget: {why}")
    return sentence + "."


def _why_nothing(candidates, metric, budget, records, max_gpu_memory_mb, max_memory_mb) -> str:
    if not candidates:
        failed = sum(1 for r in records if not r.ok)
        return (f"no ok record with a latency and a {METRICS[metric]} to choose from "
                f"({len(records)} record(s), {failed} failed); run maskbench benchmark first.")
    fastest = min(candidates, key=ranked_latency_ms)
    sentence = (f"nothing fits {budget}. The fastest is {point_label(fastest)} at "
                f"{ranked_latency_ms(fastest):.0f} ms mean, {_ap_text(fastest, metric)}")
    on_gpu = [(r, gpu_memory_mb(r)) for r in candidates if str(r.device).startswith("cuda")]
    measured = [(r, mb) for r, mb in on_gpu if mb is not None]
    if max_gpu_memory_mb is not None and measured:
        smallest, mb = min(measured, key=lambda item: item[1])
        sentence += f"; the smallest on the GPU is {point_label(smallest)} with {format_mb(mb)}"
    elif max_gpu_memory_mb is not None and not on_gpu:
        sentence += "; every record ran on the CPU (no GPU memory used): benchmark a GPU runtime to use the GPU"
    host = [(r, mb) for r, mb in [(r, host_memory_mb(r)) for r in candidates] if mb is not None]
    if max_memory_mb is not None and host:
        smallest, mb = min(host, key=lambda item: item[1])
        sentence += f"; the smallest in host memory is {point_label(smallest)} with {format_mb(mb)}"
    return sentence + "."
