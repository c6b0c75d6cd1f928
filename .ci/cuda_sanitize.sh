#!/usr/bin/env bash
# cuda_sanitize.sh — compute-sanitizer (memcheck, then racecheck) over the deterministic CUDA tests; needs a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
SAN="$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")"
TESTS=(python -m pytest -q -x -p no:cacheprovider tests/test_cuda.py)
"$SAN" --tool memcheck --error-exitcode 1 "${TESTS[@]}" -k "smoke or special_values or int8 or graph or fused_other"
"$SAN" --tool racecheck --error-exitcode 1 "${TESTS[@]}" -k "smoke"
