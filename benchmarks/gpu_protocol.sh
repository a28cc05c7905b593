#!/usr/bin/env bash
# The accuracy protocol (benchmarks/distill_fmnist.py) as one command on a lent GPU machine,
# whose image has python3 + torch but neither Brevitas nor this package installed, and no
# network: Brevitas and its pure-Python dependencies travel as wheels in .whl/ (README,
# "Accuracy on a GPU"), the Fashion-MNIST idx files in .devdata/fashion-mnist/, and the
# package is put on the path through links (no build step).  Everything the run writes goes
# under WORK (default: a new temporary folder); the files a reader needs are packed into
# OUT_DIR, at most 8 files and nothing else (the device tool brings back no more):
# the JSON, the plot, the log, the GPU load, the runs' metrics/configs, and the weights of the
# teacher and of the density-1/4 KD students.
#   bash benchmarks/gpu_protocol.sh OUT_DIR [arguments of distill_fmnist.py ...]
# Rehearsed on CPU with: PYTHON=.venv/bin/python bash benchmarks/gpu_protocol.sh rehearsal \
#   --quick --device cpu --jobs 2 --budget-s 240 --teacher-epochs 1
set -euo pipefail
out=${1:?usage: gpu_protocol.sh OUT_DIR [distill_fmnist.py arguments]}
shift
py=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"
work=${WORK:-$(mktemp -d -t wf-protocol.XXXX)}
site=$(mktemp -d -t wf-site.XXXX)
shim=$(mktemp -d -t wf-shim.XXXX)
shopt -s nullglob
wheels=(.whl/*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -gt 0 ]; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "${wheels[@]}"
fi
data=()
[ -d .devdata/fashion-mnist ] && data=(--data-root .devdata/fashion-mnist)
mkdir -p "$shim/winoforge"
cp winoforge/*.py "$shim/winoforge/"
for d in winograd model hw runtime; do ln -s "$root/$d" "$shim/winoforge/$d"; done
export PYTHONPATH="$site:$shim" PYTHONUNBUFFERED=1
"$py" - <<'PY'
import torch, brevitas, numpy
print("torch", torch.__version__, "brevitas", brevitas.__version__, "numpy", numpy.__version__,
      "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
dmon=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" || true
    nvidia-smi dmon -s um -d 5 >> "$out/gpu.txt" 2>&1 &
    dmon=$!
fi
status=0
"$py" benchmarks/distill_fmnist.py --out-dir "$work" "${data[@]}" "$@" \
    2>&1 | tee "$out/protocol.log" || status=$?
[ -n "$dmon" ] && kill "$dmon" 2>/dev/null || true
mkdir -p "$work/runs"
cd "$work"
cp distill_fmnist*.json distill_fmnist*.png "$out/" 2>/dev/null || true
find runs -maxdepth 2 \( -name metrics.jsonl -o -name model.json -o -name config.json -o -name mixed_precision.json \
    -o -name bench_wall.json -o -name '*.err' \) -print0 | tar czf "$out/runs-meta.tgz" --null -T -
shopt -s nullglob
weights=(runs/teacher-*/model.safetensors)
[ ${#weights[@]} -gt 0 ] && tar czf "$out/weights-teacher.tgz" "${weights[@]}"
for net in pynqz2 wide; do
    weights=(runs/"$net"-w4a4_d0.25-kd-s*/model.safetensors)
    [ ${#weights[@]} -gt 0 ] && tar czf "$out/weights-$net.tgz" "${weights[@]}"
done
ls -la "$out"
exit "$status"
