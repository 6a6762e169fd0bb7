"""The energy readers on sysfs trees laid out as the kernel documents them (powercap's
intel-rapl zones, the ina3221 hwmon driver) and a stand-in pynvml."""

from __future__ import annotations

import os
import sys
import types

import pytest

from maskbench.rig import energy
from maskbench.rig.energy import EnergyMeters, Ina3221Meter, NvmlMeter, RaplMeter


def rapl_zone(root, zone: str, name: str, energy_uj: int, max_uj: int = 262143328850):
    folder = root / "sys/class/powercap" / zone
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder / "energy_uj"


def test_rapl_sums_deltas_across_the_wrap_around(tmp_path):
    package = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, max_uj=1_000_000_000)
    dram = rapl_zone(tmp_path, "intel-rapl:0:0", "dram", 5_000_000)
    meter, said = RaplMeter.discover(tmp_path)
    assert said == [] and meter is not None
    meter.start()
    package.write_text("500000\n")  # wrapped: 1 J to the top, 0.5 J after it
    dram.write_text("7000000\n")
    meter.sample()
    package.write_text("2500000\n")
    readings, _ = meter.stop()
    by_label = {r.label: r for r in readings}
    assert by_label["rapl:intel-rapl:0:package-0"].joules == pytest.approx(3.5)
    assert by_label["rapl:intel-rapl:0:0:dram"].joules == pytest.approx(2.0)
    assert "CPU package 0" in by_label["rapl:intel-rapl:0:package-0"].covers
    assert "DRAM" in by_label["rapl:intel-rapl:0:0:dram"].covers


def test_rapl_root_only_is_a_statement_not_an_error(tmp_path, monkeypatch):
    path = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    path.chmod(0o000)
    if os.geteuid() == 0:  # root reads any file: play the kernel's 0400 for a user
        real = energy.read_counter

        def denied(p):
            if p == path:
                raise PermissionError(13, "Permission denied")
            return real(p)

        monkeypatch.setattr(energy, "read_counter", denied)
    meter, said = RaplMeter.discover(tmp_path)
    assert meter is None
    assert len(said) == 1 and "root only" in said[0] and str(path) in said[0]


def test_no_counters_say_so_and_cpu_seconds_stand_in(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    meters = EnergyMeters.discover(tmp_path)
    meters.start()
    report = meters.stop()
    assert not report.measured
    text = " ".join(report.statements)
    assert "RAPL: no counters" in text and "pynvml is not installed" in text and "not a Jetson" in text
    assert "CPU seconds per frame stands in" in text


def ina3221(root, rails: dict[str, tuple[int, int]], disabled: int | None = None):
    folder = root / "sys/class/hwmon/hwmon1"
    folder.mkdir(parents=True)
    (folder / "name").write_text("ina3221\n")
    for n, (label, (mv, ma)) in enumerate(rails.items(), 1):
        (folder / f"in{n}_label").write_text(label + "\n")
        (folder / f"in{n}_input").write_text(f"{mv}\n")
        (folder / f"curr{n}_input").write_text(f"{ma}\n")
        (folder / f"in{n}_enable").write_text("0\n" if n == disabled else "1\n")
    (root / "sys/class/hwmon/hwmon0").mkdir()
    (root / "sys/class/hwmon/hwmon0/name").write_text("coretemp\n")
    return folder


def test_ina3221_rails_integrate_power(tmp_path, monkeypatch):
    folder = ina3221(tmp_path, {"VDD_IN": (5000, 2000), "VDD_CPU_GPU_CV": (5000, 600), "VDD_SOC": (5000, 400)},
                     disabled=3)
    clock = iter([0.0, 1.0, 3.0, 3.0])
    monkeypatch.setattr(energy.time, "monotonic", lambda: next(clock))
    meter, said = Ina3221Meter.discover(tmp_path)
    assert said == [] and [c[2] for c in meter.channels] == ["ina3221:hwmon1:VDD_IN", "ina3221:hwmon1:VDD_CPU_GPU_CV"]
    meter.start()  # t=0: 10 W and 3 W
    (folder / "curr1_input").write_text("4000\n")  # 20 W from t=1
    meter.sample()  # t=1
    readings, _ = meter.stop()  # t=3
    module = readings[0]
    assert module.joules == pytest.approx(15 + 40)  # trapezoids: (10+20)/2*1 + 20*2
    assert "without the carrier board" in module.covers
    assert readings[1].joules == pytest.approx(9.0) and module.seconds == 3.0


def test_nvml_total_energy_in_millijoules(monkeypatch):
    counter = {"mj": 1_000_000}
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: counter["mj"])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter, said = NvmlMeter.discover()
    assert said == []
    clock = iter([100.0, 100.5, 200.0, 202.0])
    monkeypatch.setattr(energy.time, "monotonic", lambda: next(clock))
    meter.start()
    counter["mj"] += 400
    readings, said = meter.stop()  # 0.5 s: too short for NVML's counter
    assert readings == [] and "too short" in said[0]
    meter.start()
    counter["mj"] += 150_000
    readings, _ = meter.stop()
    assert readings[0].joules == pytest.approx(150.0) and readings[0].watts == pytest.approx(75.0)
    assert readings[0].covers == "the whole GPU board"


def test_nvml_without_an_energy_counter(monkeypatch):
    def unsupported(handle):
        raise RuntimeError("Not Supported")

    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 1,
                                 nvmlDeviceGetHandleByIndex=lambda i: i,
                                 nvmlDeviceGetTotalEnergyConsumption=unsupported)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter, said = NvmlMeter.discover()
    assert meter is None and "Not Supported" in said[0]
