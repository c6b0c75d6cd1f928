#!/usr/bin/env bash
# cuda_compile_check.sh — compile-only every csrc/cuda/*.cu with nvcc and syntax-check the CUDA bindings (no GPU needed); non-zero on any error or warning.
#
# Targets sm_80, sm_90 and sm_90a (the tensor-core paths: mma, wgmma) and sm_75 (the guarded fallbacks), with the flags
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
       -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90a,code=sm_90a -DFAKEQUANT_SM90A)
status=0
# The CUDA binding files (host C++ against torch's CUDA headers). A CPU-only torch ships those headers
# but not the generated c10/cuda/impl/cuda_cmake_macros.h, which an empty stub stands in for.
PY="${PYTHON:-python}"
STUB="$(mktemp -d)"
trap 'rm -rf "$STUB"' EXIT
mkdir -p "$STUB/c10/cuda/impl" && : > "$STUB/c10/cuda/impl/cuda_cmake_macros.h"
mapfile -t TORCH_INC < <("$PY" -c 'import os, sysconfig, torch.utils.cpp_extension as c
for p in c.include_paths() + [sysconfig.get_paths()["include"]]: print("-I" + p)
print("-isystem" + os.path.join(os.environ.get("CUDA_HOME") or c.CUDA_HOME or "/usr/local/cuda", "include"))')
for src in csrc/cuda/*.cpp; do
  if g++ -fsyntax-only -std=c++20 -Wall -Werror -Icsrc "${TORCH_INC[@]}" -isystem "$STUB" -DFAKEQUANT_WITH_CUDA \
       "$src"; then
    echo "ok   $src"
  else
    echo "FAIL $src" >&2
    status=1
  fi
done
for src in csrc/cuda/*.cu; do
  if "$NVCC" "${FLAGS[@]}" "$src" -o /dev/null; then
    echo "ok   $src"
  else
    echo "FAIL $src" >&2
    status=1
  fi
done
exit $status
