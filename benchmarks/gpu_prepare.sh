#!/usr/bin/env bash
# Prepares what a lent GPU machine needs for benchmarks/gpu_protocol.sh, in one folder that git
# ignores (default .devsnap/): a snapshot of HEAD (so uncommitted edits do not travel), Brevitas
# 0.13.0 and its pure-Python dependencies as wheels (.whl/; the GPU image has torch but no
# Brevitas and no network), and the Fashion-MNIST idx files (.devdata/).  Then, with the device
# tool: run `cd .devsnap && bash benchmarks/gpu_protocol.sh "$OUT" --device cuda --jobs 14 \
#   --budget-s 440 --deadline-s 525 --teacher-epochs 20 --batch-size 256 --no-progress`
# with carry [".devsnap"] and timeout 590 (README, "The accuracy protocol").
#   bash benchmarks/gpu_prepare.sh [FOLDER]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
snap=${1:-.devsnap}
grep -qx "/$snap/" .git/info/exclude 2>/dev/null || echo "/$snap/" >> .git/info/exclude
rm -rf "$snap"
mkdir -p "$snap/.whl" "$snap/.devdata/fashion-mnist"
git archive HEAD | tar -x -C "$snap"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$snap/.whl" \
    brevitas==0.13.0 dependencies==2.0.1 unfoldNd==0.2.3 setuptools==69.5.1
cp /usr/share/datasets/fashion-mnist/*.gz "$snap/.devdata/fashion-mnist/"
du -sh "$snap"
