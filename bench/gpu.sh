#!/usr/bin/env bash
# The GPU checks of issue 13, as one short run on the lent GPU machine (python3 there has a
# CUDA torch; nothing can be downloaded there). Prepare the wheels here first, once:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl ase==3.29.0 sevenn==0.13.0 vesin spglib \
#       braceexpand pymatgen-core monty ruamel.yaml uncertainties
#
# then run it through the device tool with carry [".whl"] and command `bash bench/gpu.sh`.
# It installs the wheels and this project, then runs bench/gpu_checks.py (CUDA equals CPU,
# per-step times 64 -> 4,096 atoms against upstream on the same GPU, a batch of 64 small
# structures, the largest cell that fits) and bench/threads.py on the machine's 16 cores,
# writing everything under $OUT (or bench/results/gpu/ without it).
set -euo pipefail
out="${OUT:-bench/results/gpu}"
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt" || true
python3 bench/gpu_checks.py --out "$out/gpu.json" 2>&1 | tee "$out/gpu_checks.log"
timeout 240 python3 bench/threads.py --parts defaults cores --sizes 64 512 --repeats 3 \
  2>&1 | tee "$out/threads.log" || echo "threads part cut at its time limit"
