#!/usr/bin/env bash
# gpu_check.sh — on a machine with a GPU: build with CUDA, run the CUDA tests, compute-sanitizer and the CUDA benchmark.
#
# Usage: .ci/gpu_check.sh LOGDIR. Each step has its own time limit and log (LOGDIR/{build,smoke,tests,
# bench,sanitize}.log), so one failing or slow step leaves the others' results. Exit status: the tests'.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="${1:?usage: .ci/gpu_check.sh LOGDIR}"
mkdir -p "$LOG"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci MAX_JOBS="${MAX_JOBS:-16}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}"
nvidia-smi -L | tee "$LOG/device.txt"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$LOG/device.txt"
SECONDS=0
timeout "${BUILD_LIMIT:-300}" "$PY" setup.py build_ext --inplace > "$LOG/build.log" 2>&1 || { tail -40 "$LOG/build.log"; exit 1; }
echo "build: ${SECONDS}s"
# The tensor-core instructions in the build (IGMMA: wgmma, IMMA: mma.sync), when cuobjdump is there.
command -v cuobjdump > /dev/null && cuobjdump --dump-sass fakequant/_C*.so 2> /dev/null |
  grep -o -E "IGMMA|IMMA|UTMALDG" | sort | uniq -c | tee "$LOG/sass.txt"
# A first wgmma run under its own short limit: a hang or a wrong product leaves the rest on mma.sync.
SECONDS=0
deselect=()
timeout "${SMOKE_LIMIT:-60}" "$PY" .ci/gemm_smoke.py > "$LOG/smoke.log" 2>&1
smoke=$?
echo "gemm smoke: ${SECONDS}s, exit $smoke"; tail -12 "$LOG/smoke.log"
if [ "$smoke" -ne 0 ]; then export FAKEQUANT_CUDA_GEMM=mma; deselect=(-k "not wgmma"); fi
SECONDS=0
timeout "${TEST_LIMIT:-240}" "$PY" -m pytest -q -p no:cacheprovider --tb=short -rf tests/test_cuda.py tests/test_cuda_int8.py \
  "${deselect[@]}" > "$LOG/tests.log" 2>&1
status=$?
echo "tests: ${SECONDS}s, exit $status"; tail -25 "$LOG/tests.log"
SECONDS=0
timeout "${BENCH_LIMIT:-150}" "$PY" benchmarks/cuda_bench.py > "$LOG/bench.log" 2>&1
echo "bench: ${SECONDS}s, exit $?"; cat "$LOG/bench.log"
SECONDS=0
timeout "${SANITIZE_LIMIT:-150}" .ci/cuda_sanitize.sh > "$LOG/sanitize.log" 2>&1
echo "sanitize: ${SECONDS}s, exit $?"; grep -E "ERROR SUMMARY|passed|failed|error" "$LOG/sanitize.log" | tail -8
exit $status
