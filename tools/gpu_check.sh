#!/usr/bin/env bash
# The GPU paths, checked in one go (issue 29). NOT RUN YET: no NVIDIA GPU has been at hand where
# maskbench is developed; only its syntax (bash -n), its dry run (DRY_RUN=1) and its CPU
# rehearsal (CPU_REHEARSAL=1) have run. Whoever first runs it on a GPU: commit the report folder.
#
# On a machine with an NVIDIA GPU and a driver (nvidia-smi works), from the repository root:
#   tools/gpu_check.sh [OUT_DIR]        (default: out/gpu-check-<UTC date and time>)
# it
#   1. installs maskbench with the `runtimes` extra and onnxruntime-gpu into a virtualenv
#      ($VENV, default .venv-gpu; SKIP_INSTALL=1: use $VENV as it is);
#   2. records nvidia-smi, the versions (Python, torch + CUDA + cuDNN, ONNX Runtime and its
#      providers, maskbench) and `maskbench runtimes`;
#   3. measures the GPU's matrix-multiply peak (python -m maskbench.benchmark.peak_cuda);
#   4. runs `maskbench check-conversion` for r50 and rtmdet-ins-s: torch, torch-compile and
#      onnxruntime-cuda in fp32, torch and torch-compile in fp16, each against eager fp32;
#   5. runs a short `maskbench benchmark` of the same models, runtimes and precisions on the
#      CAM_FRONT frame (1 warm-up, 2 timed passes);
#   6. writes OUT_DIR/summary.md: each step's command, exit status and time, and the
#      benchmark's table.
# Designed to finish in under 8 minutes: every step runs under `timeout`, within a budget that
# ends at DEADLINE_S (default 470 s) after the start; a step cut short is marked so in the summary
# and the rest goes on. (The install, mostly torch's CUDA wheels, is the unknown part: a slow
# network eats the budget of the later steps; SKIP_INSTALL=1 with a ready $VENV avoids that.)
#
# Budgets (seconds, each cut to what is left): INSTALL_S=240 CHECK_FP32_S=75 CHECK_FP16_S=60
# BENCH_S=200; MODELS="r50 rtmdet-ins-s" (space-separated).
# DRY_RUN=1: print the steps' commands, run none of them (no GPU needed).
# CPU_REHEARSAL=1: run the same steps on the CPU (torch and onnxruntime at 320x192, no install,
# with $PYTHON's maskbench): checks the script's plumbing, not the GPU paths.
set -uo pipefail

START=$(date +%s)
DEADLINE_S=${DEADLINE_S:-470}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-"$REPO/out/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)"}
VENV=${VENV:-"$REPO/.venv-gpu"}
DRY_RUN=${DRY_RUN:-0}
CPU_REHEARSAL=${CPU_REHEARSAL:-0}
read -r -a MODELS <<< "${MODELS:-r50 rtmdet-ins-s}"

if [[ "$CPU_REHEARSAL" == 1 ]]; then
    PYTHON=${PYTHON:-python3}
    FP32_RUNTIMES=torch,onnxruntime
    FP16_RUNTIMES=""  # fp16 runs on CUDA only
    SIZE_ARGS=(--input-size 320x192)
    DEVICE_ARGS=()
else
    PYTHON="$VENV/bin/python"
    FP32_RUNTIMES=torch,torch-compile,onnxruntime-cuda
    FP16_RUNTIMES=torch,torch-compile
    SIZE_ARGS=()
    DEVICE_ARGS=(--device cuda:0)
fi
MASKBENCH=("$PYTHON" -m maskbench.cli)
SUMMARY="$OUT/summary.md"

mkdir -p "$OUT/logs"
{
    echo "# GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    [[ "$CPU_REHEARSAL" == 1 ]] && echo "**CPU rehearsal**: the script's plumbing on the CPU; no GPU path ran." && echo
    [[ "$DRY_RUN" == 1 ]] && echo "**Dry run**: the commands only; nothing ran." && echo
    echo "| step | exit | seconds | command |"
    echo "|---|---|---|---|"
} > "$SUMMARY"

# step NAME BUDGET_S COMMAND...: run COMMAND under `timeout` (its budget, cut to what is left
# before the deadline), its output in logs/NAME.log, one line in the summary.
step() {
    local name=$1 budget=$2
    shift 2
    local left=$((DEADLINE_S - ($(date +%s) - START)))
    ((budget > left)) && budget=$left
    local shown
    shown=$(printf '%s ' "$@" | tr -s ' \n' ' ')
    shown=${shown//|/\\|}
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "[dry run] $name (budget ${budget}s): $*"
        echo "| $name | not run | - | \`$shown\` |" >> "$SUMMARY"
        return 0
    fi
    if ((budget <= 5)); then
        echo "| $name | skipped: the ${DEADLINE_S}s budget was spent | - | \`$shown\` |" >> "$SUMMARY"
        return 0
    fi
    echo "== $name (at most ${budget}s)"
    local t0=$(date +%s) rc
    timeout --kill-after=10 "$budget" "$@" > "$OUT/logs/$name.log" 2>&1
    rc=$?
    local status=$rc
    ((rc == 124 || rc == 137)) && status="$rc (cut at ${budget}s)"
    echo "| $name | $status | $(($(date +%s) - t0)) | \`$shown\` |" >> "$SUMMARY"
    tail -n 3 "$OUT/logs/$name.log"
    return 0
}

if [[ "$CPU_REHEARSAL" != 1 && "$DRY_RUN" != 1 ]]; then
    if ! command -v nvidia-smi > /dev/null || ! nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; then
        echo "no working nvidia-smi here: this script checks the GPU paths and needs an NVIDIA GPU" \
             "with its driver; on a CPU use CPU_REHEARSAL=1 or DRY_RUN=1" >&2
        exit 2
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv >> "$OUT/nvidia-smi.txt" 2>&1
fi

if [[ "$CPU_REHEARSAL" != 1 && "${SKIP_INSTALL:-0}" != 1 ]]; then
    # onnxruntime (from the extra) and onnxruntime-gpu install the same module: keep the GPU one
    # (onnxruntime-gpu's default build is for CUDA 12; should its CUDA provider not load beside
    # torch's CUDA libraries, logs/versions.log and the onnxruntime-cuda lines say so: install the
    # onnxruntime-gpu build for torch's CUDA, then rerun with SKIP_INSTALL=1)
    step install "${INSTALL_S:-240}" bash -c "python3 -m venv '$VENV' && '$VENV/bin/pip' install -q -e '$REPO[runtimes]' && '$VENV/bin/pip' uninstall -q -y onnxruntime && '$VENV/bin/pip' install -q onnxruntime-gpu"
fi

cat > "$OUT/versions.py" <<'PY'
import platform
from importlib.metadata import version

import torch

print("python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
try:
    import onnxruntime as ort
    print("onnxruntime", ort.__version__, ort.get_available_providers())
except ImportError as err:
    print("onnxruntime: not installed", err)
print("maskbench", version("maskbench"))
PY
step versions 30 "$PYTHON" "$OUT/versions.py"
step runtimes 30 "${MASKBENCH[@]}" runtimes
# the GPU's matrix-multiply peak (fp32 with TF32, fp16, bf16) that the benchmark's GPU rows are
# shared against (maskbench.benchmark.peak_cuda; the CPU rehearsal probes the CPU at N = 512)
if [[ "$CPU_REHEARSAL" == 1 ]]; then PEAK_ARGS=(--device cpu --matrix 512); else PEAK_ARGS=(--device cuda:0); fi
step peak 40 "$PYTHON" -m maskbench.benchmark.peak_cuda "${PEAK_ARGS[@]}"

for model in "${MODELS[@]}"; do
    step "check-$model-fp32" "${CHECK_FP32_S:-75}" "${MASKBENCH[@]}" check-conversion --model "$model" --runtimes "$FP32_RUNTIMES" \
        --precision fp32 --cameras CAM_FRONT "${SIZE_ARGS[@]}" --out "$OUT/check-conversion/${model}_fp32.json"
    if [[ -n "$FP16_RUNTIMES" ]]; then
        step "check-$model-fp16" "${CHECK_FP16_S:-60}" "${MASKBENCH[@]}" check-conversion --model "$model" --runtimes "$FP16_RUNTIMES" \
            --precision fp16 --cameras CAM_FRONT "${SIZE_ARGS[@]}" --out "$OUT/check-conversion/${model}_fp16.json"
    fi
done

PRECISIONS=fp32
[[ -n "$FP16_RUNTIMES" ]] && PRECISIONS=fp32,fp16  # the pairs that cannot run (ORT CUDA fp16) are left out
step benchmark "${BENCH_S:-200}" "${MASKBENCH[@]}" benchmark --models "$(IFS=,; echo "${MODELS[*]}")" --runtimes "$FP32_RUNTIMES" \
    --precisions "$PRECISIONS" "${DEVICE_ARGS[@]}" --cameras CAM_FRONT "${SIZE_ARGS[@]}" --warmup 1 --repeat 2 \
    --timeout 150 --out "$OUT/benchmark"

{
    echo
    echo "Total: $(($(date +%s) - START)) s. Logs: logs/; check-conversion files: check-conversion/;"
    echo "benchmark: benchmark/ (report.md, results.jsonl); nvidia-smi: nvidia-smi.txt."
    if [[ -f "$OUT/benchmark/report.md" ]]; then
        echo
        echo "## Benchmark (from benchmark/report.md)"
        echo
        cat "$OUT/benchmark/report.md"
    fi
} >> "$SUMMARY"
echo "report: $SUMMARY"
