"""Run the parity test under every CPU-kernel and thread setting one machine can imitate.

    .venv/bin/python tools/parity_matrix.py [-k EXPR] [--out docs/parity_matrix.md]

The project's machines come in several CPU kinds (AMD AVX2, AMD AVX-512, Intel AVX-512 + AMX),
and oneDNN, ATen and MKL each pick their kernels by what the CPU offers. These variables make
one machine take another kind's kernels: ``ONEDNN_MAX_CPU_ISA`` (oneDNN's float32 convolutions),
``ATEN_CPU_CAPABILITY`` (ATen's vectorised element-wise kernels), ``MKL_ENABLE_INSTRUCTIONS``
(MKL's GEMMs, which float64 convolutions use), and the thread count. Each setting runs
``pytest tests/parity`` in a fresh process (the variables are read once, at start-up) and the
verdicts are tabulated: the same verdict under every setting is what "the same on every machine"
means here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ONEDNN_MAX_CPU_ISA=AVX512_CORE": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "all AVX2 (oneDNN+ATen+MKL)": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                                     "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def run_setting(env_changes: dict[str, str], keyword: str | None) -> tuple[str, float, str]:
    env = {**os.environ, **env_changes}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity"]
    if keyword:
        command += ["-k", keyword]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
                   done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:])
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    verdict = "pass" if done.returncode == 0 else "FAIL"
    detail = re.sub(r"=+", "", summary).strip() + ("; " + "; ".join(failures) if failures else "")
    return verdict, elapsed, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression (default: every test)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated setting names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args()
    rows = ["| setting | verdict | wall time (s) | pytest summary |", "|---|---|---|---|"]
    print("\n".join(rows), flush=True)
    for name in args.settings.split(","):
        verdict, elapsed, detail = run_setting(SETTINGS[name], args.keyword)
        rows.append(f"| {name} | {verdict} | {elapsed:.0f} | {detail} |")
        print(rows[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
