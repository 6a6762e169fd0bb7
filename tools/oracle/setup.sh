#!/usr/bin/env bash
# The parity oracle: MMDetection 3.3.0 + MMCV 2.1.0 (built from source, with its ops) +
# mmpretrain 1.2.0 (ConvNeXt), in a virtualenv of its own. Not a dependency of maskbench, not
# part of CI; only tools/oracle/make_fixtures.py uses it.
#
# Why these steps (measured on a 2-core x86_64 machine):
# - mmcv 2.1.0 has no wheel for current torch; it builds from source in ~10 min with 2 jobs.
# - torch 2.14 headers need C++20; mmcv's setup.py asks for -std=c++17, so it is patched.
# - mmpretrain imports torchvision, which loads its ops here only with torch 2.14.1 +
#   torchvision 0.29.1.
# Usage: tools/oracle/setup.sh [VENV_DIR]   (default: ../oracle-venv beside the repo)
set -euo pipefail
VENV=${1:-"$(cd "$(dirname "$0")/../.." && pwd)/../oracle-venv"}
WORK=$(mktemp -d)
MMCV_URL="https://files.pythonhosted.org/packages/a7/19/f97f0fd4d432113a232e75f965335be6b7bb6557ae9faf8051e9a012cadd/mmcv-2.1.0.tar.gz"
MMCV_SHA256="d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"

python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install torch==2.14.1 torchvision==0.29.1 "setuptools<81" wheel ninja "numpy<2.5" opencv-python-headless

curl -sSL -o "$WORK/mmcv-2.1.0.tar.gz" "$MMCV_URL"
echo "$MMCV_SHA256  $WORK/mmcv-2.1.0.tar.gz" | sha256sum -c -
tar -xzf "$WORK/mmcv-2.1.0.tar.gz" -C "$WORK"
sed -i 's/-std=c++17/-std=c++20/g' "$WORK/mmcv-2.1.0/setup.py"
(cd "$WORK/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS=2 "$PIP" install --no-build-isolation --no-cache-dir .)

"$PIP" install mmengine==0.10.7 mmdet==3.3.0 mmpretrain==1.2.0
"$VENV/bin/python" -c "import mmcv, mmdet, mmpretrain; from mmcv.ops import RoIAlign, nms; print('oracle ready:', mmcv.__version__, mmdet.__version__, mmpretrain.__version__)"
