#!/usr/bin/env bash
# cuda_sanitize.sh — compute-sanitizer (memcheck, then racecheck) over the deterministic CUDA tests; needs a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
SAN="$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")"
TESTS=("${PYTHON:-python3}" -m pytest -q -x -p no:cacheprovider)
"$SAN" --tool memcheck --error-exitcode 1 "${TESTS[@]}" tests/test_cuda.py \
  -k "smoke or special_values or int8 or graph or fused_other"
"$SAN" --tool memcheck --error-exitcode 1 "${TESTS[@]}" tests/test_cuda_int8.py -k "cuda and not network"
"$SAN" --tool racecheck --error-exitcode 1 "${TESTS[@]}" tests/test_cuda.py -k "smoke"
