"""What the machine says about itself while a sustained run goes on: CPU clock (MHz) and
temperatures, read from ``/proc`` and ``/sys`` under a root path (tests lay out the files in a
temporary folder). Absent files give None / nothing: many machines (VMs, containers) have neither."""

from __future__ import annotations

from pathlib import Path


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_mhz(root: Path = Path("/")) -> float | None:
    """The mean current clock of the CPUs: cpufreq's ``scaling_cur_freq`` (kHz) where present,
    else ``cpu MHz`` of ``/proc/cpuinfo`` (x86), else None."""
    values = []
    for path in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        text = _read(path)
        if text and text.isdigit():
            values.append(int(text) / 1000.0)
    if not values:
        text = _read(root / "proc/cpuinfo") or ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                try:
                    values.append(float(value))
                except ValueError:
                    continue
    return round(sum(values) / len(values), 1) if values else None


def temperatures_c(root: Path = Path("/")) -> dict[str, float]:
    """``{zone type: degrees C}`` from ``/sys/class/thermal/thermal_zone*/temp`` (millidegrees);
    a type seen twice gets the zone's number appended."""
    found: dict[str, float] = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        text = _read(zone / "temp")
        try:
            value = int(text) / 1000.0 if text is not None else None
        except ValueError:
            value = None
        if value is None:
            continue
        name = _read(zone / "type") or zone.name
        if name in found:
            name = f"{name}:{zone.name.removeprefix('thermal_zone')}"
        found[name] = value
    return found
