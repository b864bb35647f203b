#!/usr/bin/env bash
# Every GPU measurement of issue #5 in one call of the device tool (see benchmarks/RESULTS.md):
#   1. the card, driver, CUDA, torch and Triton versions;
#   2. benchmarks/step_bench.py --device cuda: every variant checked against float64 in fp32,
#      TF32 and bf16, then timed side by side, then peak memory, then the op's FLOP/s;
#   3. benchmarks/train_bench.py --device cuda: 30 CUB-sized epochs from a float16 store held
#      on the GPU, evaluated after every epoch, for fp32, tf32, bf16 and tf32 + CUDA graphs.
# Runs from the repository root without installing zslkit (the device image has its
# dependencies); logs and JSON records go to $OUT (default bench-out/).
#
#   bash benchmarks/gpu_run.sh                 # what the device tool runs
#   STEP_TIMEOUT=200 TRAIN_TIMEOUT=300 bash benchmarks/gpu_run.sh
set -uo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  "$PY" -c "import torch, triton, zslkit.ops as o; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, 'zslkit triton kernels', o.TRITON_KERNELS)"
} 2>&1 | tee "$OUT/device.txt"
cd benchmarks
timeout "${STEP_TIMEOUT:-240}" "$PY" step_bench.py --device cuda --out "$OLDPWD/$OUT/step_bench_cuda.json" \
  > "$OLDPWD/$OUT/step_bench.log" 2>&1
echo "step_bench exit $?"; tail -n 20 "$OLDPWD/$OUT/step_bench.log"
timeout "${TRAIN_TIMEOUT:-300}" "$PY" train_bench.py --device cuda --dir /tmp --out "$OLDPWD/$OUT/train_bench_cuda.json" \
  > "$OLDPWD/$OUT/train_bench.log" 2>&1
echo "train_bench exit $?"; tail -n 8 "$OLDPWD/$OUT/train_bench.log"
