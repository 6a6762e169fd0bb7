"""Pick what to deploy for a camera rig from ``maskbench rig`` records:
``maskbench recommend --cameras 3 --fps 12 --deadline 150ms [--max-power 15]``.

A record holds the asked load when it held (misses within its ``--max-miss``, or the asked
``--max-miss`` where given) at least as many cameras at at least the asked rate, with a deadline
no looser than the asked one (a run judged against 250 ms says nothing about 150 ms). Past that,
the most accurate model wins (its zoo AP, published for the official weights, by ``--metric``);
among its runtimes, precisions and configurations the lowest p99 latency, then the fewest CPU
seconds per frame. ``--max-power`` keeps the records whose average power during the run (energy
per frame x frames per second, at a load at or above the asked one) is within it; one counter
per source (RAPL, NVML, INA3221), the widest reading of each (e.g. the package, not its cores),
summed. A record without energy does not fit a power budget (unknown is not low); when no record
has energy the answer says so plainly.

What a precision costs in accuracy comes from the benchmark records given beside the rig records
(``maskbench benchmark --fidelity [--coco]``) of the same model, weights, runtime and precision:
the pick's sentence states it (or that a reduced precision's cost is unmeasured), and the fidelity
floors (``--min-mask-iou``, ``--max-ap-drop``) apply as in the benchmark's recommend: a record
without a measurement is not filtered, and a note says the floor was unchecked for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from maskbench.report.recommend import FidelityFloor
from maskbench.report.rig_tables import held_text
from maskbench.results.machines import machine_label, machines_of
from maskbench.results.records import BenchmarkRecord
from maskbench.results.rig_records import RigRecord
from maskbench.utils.names import METRICS


@dataclass(frozen=True)
class RigDemand:
    cameras: int
    fps: float  # per camera
    deadline_ms: float
    max_power_w: float | None = None
    max_miss: float | None = None  # None: each record's own --max-miss
    min_mask_iou: float | None = None  # fidelity floors, as the benchmark's recommend takes them
    max_ap_drop: float | None = None

    def words(self) -> str:
        words = f"{self.cameras} camera(s) at {self.fps:g} Hz within {self.deadline_ms:g} ms"
        if self.max_miss is not None:
            words += f", misses <= {self.max_miss:.1%}"
        words += "".join(f", {floor}" for floor in self.floor.words())
        return words + (f", power <= {self.max_power_w:g} W" if self.max_power_w is not None else "")

    @property
    def floor(self) -> FidelityFloor:
        return FidelityFloor(self.min_mask_iou, self.max_ap_drop)


@dataclass(frozen=True)
class PrecisionCost:
    """A runtime and precision's agreement with fp32 eager PyTorch, from a benchmark record."""

    mean_mask_iou: float | None
    ap_drop: float | None  # mask AP points lost (benchmark --fidelity --coco)
    note: str | None  # the record's fidelity note (e.g. random weights)

    def words(self) -> str:
        parts = [f"mean mask IoU {self.mean_mask_iou:.3f}"] if self.mean_mask_iou is not None else []
        parts += [f"AP drop {self.ap_drop:.1f}"] if self.ap_drop is not None else []
        return ", ".join(parts) + (f" ({self.note})" if self.note else "")


CostKey = tuple[str, str, str, str]  # model, weights, runtime, precision


def cost_key(record: RigRecord | BenchmarkRecord) -> CostKey:
    return record.model, record.weights, record.runtime, record.precision


def precision_costs(records: Sequence[BenchmarkRecord]) -> dict[CostKey, PrecisionCost]:
    """The measured cost of each model, weights, runtime and precision in ``records`` (the last
    record with a measurement wins)."""
    return {cost_key(r): PrecisionCost(r.mean_mask_iou, r.ap_drop, r.fidelity_note) for r in records
            if r.ok and (r.mean_mask_iou is not None or r.ap_drop is not None)}


def average_power_w(record: RigRecord) -> tuple[float, str] | None:
    """(watts, which counters) during the record's run at its load, or None without energy."""
    if not record.energy_j_per_frame or not record.processed_hz:
        return None
    widest: dict[str, tuple[str, float]] = {}
    for label, joules in record.energy_j_per_frame.items():
        source = label.split(":", 1)[0]
        if source not in widest or joules > widest[source][1]:
            widest[source] = (label, joules)
    joules_per_frame = sum(j for _, j in widest.values())
    return joules_per_frame * record.processed_hz, " + ".join(label for label, _ in widest.values())


def record_ap(record: RigRecord, metric: str) -> float | None:
    return record.zoo_mask_ap if metric == "mask_ap" else record.zoo_box_ap


def why_not(record: RigRecord, demand: RigDemand, cost: PrecisionCost | None = None) -> list[str]:
    """Every way the record falls short of the demand, in words; empty when it holds it."""
    why = []
    if cost is not None:
        why += [f"{record.precision}: {failure}" for failure in demand.floor.failures(cost.mean_mask_iou, cost.ap_drop)]
    if record.deadline_ms is None or record.deadline_ms > demand.deadline_ms:
        why.append(f"judged against a {record.deadline_ms or 0:g} ms deadline, looser than {demand.deadline_ms:g} ms "
                   f"(replay it with --deadline {demand.deadline_ms:g})")
    if record.load_unit is None:
        if record.cameras < demand.cameras or record.rate_hz < demand.fps:
            why.append(f"ran {record.cameras} cam at {record.rate_hz:g} Hz, less than asked")
        elif demand.max_miss is not None and record.miss_share is not None:
            if record.miss_share > demand.max_miss:
                why.append(f"misses {record.miss_share:.1%} > {demand.max_miss:.1%}")
        elif not record.holds:
            why.append(f"misses {record.miss_share or 0:.1%} > {record.max_miss:.1%}")
    else:
        cameras = record.capacity if record.load_unit == "cameras" else record.cameras
        rate = record.capacity if record.load_unit == "fps" else record.rate_hz
        if not record.holds or cameras < demand.cameras or rate < demand.fps:
            why.append(f"holds {held_text(record)}, less than asked")
        if demand.max_miss is not None and record.max_miss > demand.max_miss:
            why.append(f"its capacity allowed {record.max_miss:.1%} misses, more than {demand.max_miss:.1%}")
    if demand.max_power_w is not None:
        power = average_power_w(record)
        if power is None:
            why.append(f"no energy measured on {machine_label(record.machine)}")
        elif power[0] > demand.max_power_w:
            why.append(f"{power[0]:.1f} W ({power[1]}) > {demand.max_power_w:g} W")
    return why


@dataclass
class RigRecommendation:
    demand: RigDemand
    metric: str
    fitting: list[RigRecord]  # best first
    rejected: list[tuple[RigRecord, str]]
    pick: RigRecord | None
    reason: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"rig: {self.demand.words()}; ranked by {METRICS[self.metric]} (zoo), then p99"]
        lines.append(f"holds it ({len(self.fitting)}):")
        lines += [f"  {_summary(r, self.metric)}" for r in self.fitting] or ["  none"]
        if self.rejected:
            lines.append("does not hold it:")
            lines += [f"  {r.label()}{_machine(r, self.fitting + [x for x, _ in self.rejected])}: {why}"
                      for r, why in self.rejected]
        lines += self.notes
        lines.append(("pick: " if self.pick else "no pick: ") + self.reason)
        return "\n".join(lines)


def _machine(record: RigRecord, records: Sequence[RigRecord]) -> str:
    several = len(machines_of(records, lambda r: r.machine)) > 1
    return f" on {machine_label(record.machine)}" if several else ""


def _summary(record: RigRecord, metric: str) -> str:
    ap = record_ap(record, metric)
    p99 = f"p99 {record.p99_ms:.0f} ms" if record.p99_ms is not None else "no p99"
    cpu = f", {record.cpu_s_per_frame:.3f} CPU-s/frame" if record.cpu_s_per_frame is not None else ""
    return (f"{record.label()}: {METRICS[metric]} {ap:.1f}" if ap is not None else f"{record.label()}: no AP") + \
        f", holds {held_text(record)}, {p99}{cpu}"


def recommend_rig(records: Sequence[RigRecord], demand: RigDemand, metric: str = "mask_ap",
                  costs: Mapping[CostKey, PrecisionCost] | None = None) -> RigRecommendation:
    """The records that hold the demand, the pick and why (see the module's rule); ``costs``:
    :func:`precision_costs` of the benchmark records given with them."""
    costs = costs or {}
    fitting, rejected, notes = [], [], []
    floor = demand.floor
    if floor.given():
        unchecked = [r for r in records if _floor_unchecked(costs.get(cost_key(r)), floor)]
        if unchecked:
            notes.append(f"fidelity floor not checked for {', '.join(r.label() for r in unchecked)}: no benchmark "
                         f"record of that model, weights, runtime and precision with it (measure it with "
                         f"{floor.how()} and give its results with the rig's)")
    for record in records:
        why = why_not(record, demand, costs.get(cost_key(record)))
        if why:
            rejected.append((record, "; ".join(why)))
        else:
            fitting.append(record)
    fitting.sort(key=lambda r: (-(record_ap(r, metric) or float("-inf")), r.p99_ms if r.p99_ms is not None
                                else float("inf"), r.cpu_s_per_frame or float("inf")))
    no_ap = [r for r in fitting if record_ap(r, metric) is None]
    if no_ap:
        notes.append(f"no zoo {METRICS[metric]} for {', '.join(r.label() for r in no_ap)}: ranked last")
    no_energy = demand.max_power_w is not None and not any(r.has_energy for r in records)
    if no_energy:
        machines = ", ".join(machines_of(records, lambda r: r.machine))
        notes.append(f"no record has an energy measurement (no readable counter on {machines}): --max-power cannot "
                     "be checked; drop it, or rig on a machine with a readable RAPL, NVML or INA3221 counter")
    pick = fitting[0] if fitting else None
    reason = _why_pick(pick, fitting, rejected, demand, metric) if pick else _why_nothing(records, rejected, demand,
                                                                                            no_energy)
    if pick is not None:
        reason += _cost_words(pick, costs.get(cost_key(pick)))
    return RigRecommendation(demand, metric, fitting, rejected, pick, reason, notes)


def _why_pick(pick: RigRecord, fitting, rejected, demand: RigDemand, metric: str) -> str:
    ap = record_ap(pick, metric)
    sentence = (f"deploy {pick.alias or pick.model} on {pick.runtime} {pick.precision} with --config {pick.config}"
                f"{_machine(pick, fitting + [r for r, _ in rejected])}: "
                + (f"{METRICS[metric]} {ap:.1f} (zoo, published for the official weights), " if ap is not None else "")
                + f"holds {held_text(pick)} within {pick.deadline_ms:g} ms")
    if pick.p99_ms is not None:
        sentence += f", p99 {pick.p99_ms:.0f} ms"
    if pick.cpu_s_per_frame is not None:
        sentence += f", {pick.cpu_s_per_frame:.3f} CPU-s/frame"
    power = average_power_w(pick)
    sentence += f", {power[0]:.1f} W ({power[1]})" if power else ", no energy counter"
    sentence += f"; asked: {demand.words()}"
    better = [(r, why) for r, why in rejected if (record_ap(r, metric) or float("-inf")) > (ap or float("-inf"))]
    if better:
        best, why = max(better, key=lambda item: record_ap(item[0], metric) or 0.0)
        sentence += f"; the more accurate {best.label()} does not hold it: {why}"
    same_model = [r for r in fitting[1:] if r.model == pick.model]
    if same_model:
        sentence += f"; {len(same_model)} other configuration(s) of it hold it too, with a higher p99"
    return sentence + "."


def _floor_unchecked(cost: PrecisionCost | None, floor: FidelityFloor) -> bool:
    return cost is None or floor.unchecked(cost.mean_mask_iou, cost.ap_drop)


def _cost_words(pick: RigRecord, cost: PrecisionCost | None) -> str:
    """The pick's accuracy cost against fp32 eager, or that a reduced precision's is unmeasured."""
    if cost is not None:
        return f" Its {pick.runtime} {pick.precision} against fp32 eager PyTorch: {cost.words()} (benchmark record)."
    if pick.precision == "fp32":
        return ""
    return (f" What {pick.precision} costs it in accuracy is not measured: measure it with maskbench benchmark "
            f"--models {pick.alias or pick.model} --runtimes {pick.runtime} --precisions {pick.precision} --fidelity "
            "(the same weights) and give its results with the rig's (--results RIG BENCH).")


def _why_nothing(records: Sequence[RigRecord], rejected, demand: RigDemand, no_energy: bool) -> str:
    if not records:
        return "no rig record to choose from; run maskbench rig --out DIR (with --find-max cameras) first."
    if no_energy:
        return (f"nothing can be checked against --max-power {demand.max_power_w:g} W: no record has an energy "
                "measurement.")
    best = max(records, key=_cameras_held)
    return (f"nothing holds {demand.words()}. The most cameras held: {best.label()}, {held_text(best)} within "
            f"{best.deadline_ms or 0:g} ms.")


def _cameras_held(record: RigRecord) -> float:
    if not record.holds:
        return 0.0
    return record.capacity if record.load_unit == "cameras" else float(record.cameras)
