#!/usr/bin/env bash
# One prepared run on a GPU machine: how large a liquid-water NVT simulation fits on one
# device, and how fast it runs, for nemp-small, the BPNN and nemp-small's NequIP peer.
#
#   bash benchmarks/gpu.sh                     # on the device machine (results under $OUT)
#   SMALL=1 JAX_PLATFORMS=cpu bash benchmarks/gpu.sh   # the same script, tiny sizes, on a CPU
#
# What it needs there: a Python with JAX for the accelerator (the device image has one);
# packages it lacks come as wheels in .whl/ (see docs/benchmarks.md: jax-md, e3nn-jax, jraph,
# ml_collections, ase), the water data in $NEMD_DATA (default .gpudata/water: the 8640-atom
# liquid and bpnn-rpbe-d3, copied from ../shared). Each case runs in its own process
# (benchmarks/large_md.py); a model's sizes stop at its first failure (out of memory: the
# largest that ran is the answer). No case starts after $BUDGET_S seconds (default 420).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/nemd-site .whl/*.whl
    export PYTHONPATH=/tmp/nemd-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
export NEMD_DATA=${NEMD_DATA:-$PWD/.gpudata/water}
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
deadline=$(( $(date +%s) + ${BUDGET_S:-420} ))
$PY -c "import jax; print('JAX', jax.__version__, jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
if [ "${SMALL:-0}" = 1 ]; then
    NEMP="8640" BPNN="8640" PEER="8640"
else
    NEMP="552960 1080000 1866240" BPNN="552960 1080000" PEER="233280 552960"
fi
run() {  # model sizes...
    local model=$1; shift
    $PY benchmarks/large_md.py --models "$model" --sizes "$@" --steps 10 --chunk 5 --max-gb 120 \
        --deadline "$deadline" --out "$OUT/gpu.jsonl" 2>&1 | tee -a "$OUT/gpu.log"
}
run nemp-small $NEMP
run bpnn-rpbe-d3 $BPNN
run nequip-nemp-small $PEER
echo "results: $OUT/gpu.jsonl"
