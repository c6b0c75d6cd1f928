#!/usr/bin/env bash
# cuda_compile_check.sh — compile-only every csrc/cuda/*.cu with nvcc (no GPU needed); non-zero on any error or warning.
#
# Targets sm_80 and sm_90 (the tensor-core paths) and sm_75 (the guarded fallbacks), with the flags
# setup.py and torch's CUDAExtension pass (no implicit half conversions, no FMA contraction).
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC="${NVCC:-nvcc}"
if ! command -v "$NVCC" > /dev/null; then
  echo "cuda_compile_check: nvcc not found" >&2
  exit 1
fi
FLAGS=(-c -std=c++17 -O3 --expt-relaxed-constexpr -fmad=false -Icsrc -Werror all-warnings
       -Xcompiler -Wall,-Wextra,-Werror
       -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__
       -D__CUDA_NO_HALF2_OPERATORS__
       -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80
       -gencode arch=compute_90,code=sm_90)
status=0
for src in csrc/cuda/*.cu; do
  if "$NVCC" "${FLAGS[@]}" "$src" -o /dev/null; then
    echo "ok   $src"
  else
    echo "FAIL $src" >&2
    status=1
  fi
done
exit $status
