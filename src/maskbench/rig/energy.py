"""Energy counters, each reading labelled with what it covers: RAPL (CPU package, DRAM; Intel
and AMD x86), NVML (a whole NVIDIA GPU board), Jetson INA3221 rails through hwmon (the module's
input, without the carrier board). All read files under a root path, so tests lay out the sysfs
trees as the kernel documents them.

A counter that is absent or unreadable is a plain statement in the report, never an error: most
machines (VMs, containers, non-root users since Linux 5.10 restricted RAPL) have none, and then
CPU-seconds per frame is the compute cost every machine can measure."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NVML_MIN_WINDOW_S = 1.0  # NVML's energy counter updates every 20-100 ms: shorter windows mislead


@dataclass(frozen=True)
class EnergyReading:
    source: str  # rapl | nvml | ina3221
    label: str  # unique within a report, e.g. rapl:intel-rapl:0:package-0
    covers: str  # what the counter measures, in words
    joules: float
    seconds: float

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EnergyReport:
    readings: tuple[EnergyReading, ...] = ()
    statements: tuple[str, ...] = ()  # why a counter is missing or unread, one line each

    @property
    def measured(self) -> bool:
        return bool(self.readings)


class Meter(Protocol):
    def start(self) -> None: ...

    def sample(self) -> None: ...

    def stop(self) -> tuple[list[EnergyReading], list[str]]: ...


def read_counter(path: Path) -> int:
    """An integer sysfs file (a test may replace this to play a root-only file)."""
    return int(path.read_text().strip())


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


RAPL_COVERS = {
    "package": "CPU package {n}: cores, caches, uncore, integrated GPU; not DRAM",
    "core": "CPU cores of package {n} (part of the package reading)",
    "uncore": "uncore / integrated GPU of package {n} (part of the package reading)",
    "dram": "DRAM of package {n}",
    "psys": "the platform (SoC and more, as the firmware defines it)",
}
RAPL_ROOT_ONLY = ("readable by root only (Linux 5.10 and later restrict RAPL); run as root or "
                  "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` to measure CPU energy")


class RaplMeter:
    """``/sys/class/powercap/intel-rapl:*`` zones; the counters (µJ) wrap at
    ``max_energy_range_uj``, so they are read at every sample and the deltas summed."""

    def __init__(self, zones: list[tuple[Path, str, str, int]]):
        self.zones = zones  # (energy_uj path, label, covers, max range)
        self._last: list[int] = []
        self._total: list[int] = []
        self._t0 = 0.0

    @classmethod
    def discover(cls, root: Path) -> tuple[RaplMeter | None, list[str]]:
        base = root / "sys/class/powercap"
        zones, statements = [], []
        for zone in sorted(base.glob("intel-rapl:*")):
            name = _text(zone / "name") or zone.name
            package = zone.name.split(":")[1]
            kind = "package" if name.startswith("package") else name
            covers = RAPL_COVERS.get(kind, "RAPL domain {name}").format(n=package, name=name)
            energy = zone / "energy_uj"
            if not energy.exists():
                continue
            try:
                read_counter(energy)
                limit = read_counter(zone / "max_energy_range_uj")
            except PermissionError:
                statements.append(f"RAPL {energy}: {RAPL_ROOT_ONLY}")
                continue
            except (OSError, ValueError) as err:
                statements.append(f"RAPL {energy}: unreadable ({type(err).__name__})")
                continue
            zones.append((energy, f"rapl:{zone.name}:{name}", covers, limit))
        if not zones and not statements:
            statements.append(f"RAPL: no counters under {base} (a VM, a container or a non-x86 CPU)")
        return (cls(zones) if zones else None), statements

    def start(self) -> None:
        self._last = [read_counter(path) for path, *_ in self.zones]
        self._total = [0] * len(self.zones)
        self._t0 = time.monotonic()

    def sample(self) -> None:
        for i, (path, _, _, limit) in enumerate(self.zones):
            value = read_counter(path)
            delta = value - self._last[i]
            self._total[i] += delta if delta >= 0 else delta + limit  # wrapped around
            self._last[i] = value

    def stop(self) -> tuple[list[EnergyReading], list[str]]:
        self.sample()
        seconds = time.monotonic() - self._t0
        return [EnergyReading("rapl", label, covers, total / 1e6, seconds)
                for (_, label, covers, _), total in zip(self.zones, self._total)], []


class NvmlMeter:
    """``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded) of every GPU."""

    def __init__(self, nvml, handles: list[tuple[object, str]]):
        self.nvml = nvml
        self.handles = handles  # (handle, label)
        self._start: list[int] = []
        self._t0 = 0.0

    @classmethod
    def discover(cls) -> tuple[NvmlMeter | None, list[str]]:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return None, ["NVML: pynvml is not installed (no NVIDIA GPU energy; pip install nvidia-ml-py)"]
        try:
            nvml.nvmlInit()
            handles = []
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                handles.append((handle, f"nvml:gpu{i}"))
        except Exception as err:  # noqa: BLE001 - pynvml raises NVMLError subclasses per cause
            return None, [f"NVML: no energy counter ({err}); GPUs before Volta have none"]
        if not handles:
            return None, ["NVML: no NVIDIA GPU"]
        return cls(nvml, handles), []

    def start(self) -> None:
        self._start = [self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h, _ in self.handles]
        self._t0 = time.monotonic()

    def sample(self) -> None:
        pass  # a running total: start and stop suffice

    def stop(self) -> tuple[list[EnergyReading], list[str]]:
        seconds = time.monotonic() - self._t0
        if seconds < NVML_MIN_WINDOW_S:
            return [], [f"NVML: the run lasted {seconds:.2f} s, too short for its energy counter (>= 1 s)"]
        return [EnergyReading("nvml", label, "the whole GPU board", (self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)
                                                                      - start) / 1000.0, seconds)
                for (h, label), start in zip(self.handles, self._start)], []


INA3221_COVERS = {
    "VDD_IN": "the whole module's input (module only, without the carrier board)",
    "VDD_CPU_GPU_CV": "the module's CPU, GPU and CV cores",
    "VDD_SOC": "the module's SoC (memory controller, engines)",
    "VDD_GPU_SOC": "the module's GPU and SoC",
    "VDD_CPU_CV": "the module's CPU and CV cores",
    "VIN_SYS_5V0": "the module's 5 V system input",
    "GPU": "the module's GPU",
    "CPU": "the module's CPU",
    "SOC": "the module's SoC",
}


class Ina3221Meter:
    """Jetson rails through the kernel's ina3221 hwmon driver: ``in[123]_label``, bus voltage
    ``in[123]_input`` (mV), current ``curr[123]_input`` (mA); power is their product, integrated
    over the samples (trapezoids)."""

    def __init__(self, channels: list[tuple[Path, Path, str, str]]):
        self.channels = channels  # (voltage file, current file, label, covers)
        self._last: list[tuple[float, float]] = []  # (time, watts)
        self._joules: list[float] = []
        self._t0 = 0.0

    @classmethod
    def discover(cls, root: Path) -> tuple[Ina3221Meter | None, list[str]]:
        channels, statements = [], []
        for hwmon in sorted((root / "sys/class/hwmon").glob("hwmon*")):
            if _text(hwmon / "name") != "ina3221":
                continue
            for n in (1, 2, 3):
                label = _text(hwmon / f"in{n}_label")
                volts, amps = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
                if label is None or not volts.exists() or not amps.exists() or _text(hwmon / f"in{n}_enable") == "0":
                    continue
                try:
                    read_counter(volts), read_counter(amps)
                except (OSError, ValueError) as err:
                    statements.append(f"INA3221 {volts.parent}: rail {label} unreadable ({type(err).__name__})")
                    continue
                channels.append((volts, amps, f"ina3221:{hwmon.name}:{label}",
                                 INA3221_COVERS.get(label, f"the rail {label}")))
        if not channels and not statements:
            statements.append("INA3221: no ina3221 hwmon device (not a Jetson)")
        return (cls(channels) if channels else None), statements

    def _watts(self) -> list[float]:
        return [read_counter(v) * read_counter(a) / 1e6 for v, a, _, _ in self.channels]

    def start(self) -> None:
        now = time.monotonic()
        self._t0 = now
        self._last = [(now, w) for w in self._watts()]
        self._joules = [0.0] * len(self.channels)

    def sample(self) -> None:
        now = time.monotonic()
        for i, watts in enumerate(self._watts()):
            then, before = self._last[i]
            self._joules[i] += (watts + before) / 2.0 * (now - then)
            self._last[i] = (now, watts)

    def stop(self) -> tuple[list[EnergyReading], list[str]]:
        self.sample()
        seconds = time.monotonic() - self._t0
        return [EnergyReading("ina3221", label, covers, joules, seconds)
                for (_, _, label, covers), joules in zip(self.channels, self._joules)], []


class EnergyMeters:
    """Every counter the machine has; ``stop()`` gives the report (readings and statements)."""

    def __init__(self, meters: list[Meter], statements: list[str]):
        self.meters = meters
        self.statements = statements

    @classmethod
    def discover(cls, root: Path = Path("/"), nvml: bool = True) -> EnergyMeters:
        meters: list[Meter] = []
        statements: list[str] = []
        found: list[tuple[Meter | None, list[str]]] = [RaplMeter.discover(root), Ina3221Meter.discover(root)]
        if nvml:
            found.append(NvmlMeter.discover())
        for meter, said in found:
            statements += said
            if meter is not None:
                meters.append(meter)
        if not meters:
            statements.append("no energy counter on this machine: CPU seconds per frame stands in")
        return cls(meters, statements)

    @classmethod
    def none(cls) -> EnergyMeters:
        return cls([], ["energy not measured"])

    def start(self) -> None:
        for meter in self.meters:
            meter.start()

    def sample(self) -> None:
        for meter in self.meters:
            meter.sample()

    def stop(self) -> EnergyReport:
        readings: list[EnergyReading] = []
        statements = list(self.statements)
        for meter in self.meters:
            got, said = meter.stop()
            readings += got
            statements += said
        return EnergyReport(tuple(readings), tuple(statements))
