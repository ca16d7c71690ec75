#!/usr/bin/env bash
# One-shot check on a GPU machine without package access: configures and builds the CUDA build in build/device
# (Ninja, JEBM_CUDA=ON, sm_90), runs nvidia-smi, the tests with device cases (CUDA, NCCL on one rank), continues
# the official-size MNIST run for MNIST_SECONDS (scripts/device-mnist.sh), runs the rest of the ctest
# suite last (it needs no GPU: only compiler differences are worth finding there) and
# `jebm bench --device cuda` next to the PyTorch twin (experiments/bench/torch_reference.py) twice, like for like:
# strict FP32 (jebm's default vs torch --tf32 off, every section) and TF32 (jebm with JEBM_ALLOW_TF32=1 vs torch
# --tf32 on, the convolution-bound ula_cnn and energy_cnn sections only); both ratio tables end the summary. It
# writes into OUTDIR: summary.md (steps, results, failed tests, build errors),
# device-check.log (the whole console), logs.tar.gz (one log per step, JUnit XML from ctest) and
# mnist-official.tar.gz (the MNIST run to unpack with scripts/device-mnist.sh --unpack) -- four files, because the
# GPU machine returns at most 8. Keeps going past failures, records them, and exits non-zero if
# anything failed. The whole run is bounded by DEADLINE_S (default 500 s).
#
# Usage, from anywhere inside the checkout:   scripts/device-check.sh OUTDIR
# Libraries the machine lacks (Boost, OpenBLAS, libpng, zlib headers) come from .device-deps/root at the checkout
# root, prepared on a Debian machine by ../shared/scripts/device-deps.sh and carried along (".device-deps").
# Environment: JOBS (default 16), BUILD_DIR (default build/device), DEADLINE_S (default 500), WERROR (default OFF),
#              MNIST_SECONDS (default 150; 0 skips the MNIST run), BENCH (default 1; 0 skips the benchmarks),
#              ALLOW_NO_GPU=1 to go on without a GPU (CUDA tests then report "skipped"; used to test this script).
# Tested by hand: `bash -n`, and on a machine without a GPU (stops at the nvidia-smi step, or with ALLOW_NO_GPU=1
# runs the CPU parts).
set -uo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 64
fi
mkdir -p "$1" || { echo "device-check: cannot create OUTDIR '$1'" >&2; exit 64; }
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
JOBS=${JOBS:-16}
BUILD=${BUILD_DIR:-build/device}
DEADLINE_S=${DEADLINE_S:-500}
MNIST_SECONDS=${MNIST_SECONDS:-150}
START=$(date +%s)
SUMMARY=$OUT/summary.md
LOGS=$OUT/work  # per-step logs; packed into logs.tar.gz at the end (sorts after the two files that matter most)
mkdir -p "$LOGS"
FAILED=0

# Everything printed from here on also lands in OUTDIR/device-check.log.
exec > >(tee -a "$OUT/device-check.log") 2>&1

{
  echo "# jebm device check"
  echo
  echo "- checkout: $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
  echo "- started: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)"
  echo "- build dir: $BUILD, jobs: $JOBS, deadline: ${DEADLINE_S}s"
  echo
  echo "| step | result | seconds | log |"
  echo "|---|---|---|---|"
} > "$SUMMARY"

remaining() { echo $((DEADLINE_S - ($(date +%s) - START))); }

# step NAME MAX_SECONDS CMD...: runs CMD under `timeout` (capped by what is left of the deadline), tees its output
# to OUTDIR/NAME.log and adds a row to the summary. Returns CMD's exit status (124 on timeout).
step() {
  local name=$1 max=$2
  shift 2
  local left
  left=$(remaining)
  local log=$LOGS/$name.log
  if [ "$left" -lt 15 ]; then
    echo "== $name: SKIPPED (deadline reached)"
    echo "| $name | SKIPPED (deadline) | 0 | - |" >> "$SUMMARY"
    FAILED=1
    return 125
  fi
  local limit=$((max < left ? max : left))
  echo "== $name (limit ${limit}s): $*"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local dt=$(($(date +%s) - t0)) result
  case $rc in
    0) result=PASS ;;
    124 | 137) result="TIMEOUT after ${limit}s" ;;
    *) result="FAIL (exit $rc)" ;;
  esac
  [ "$rc" = 0 ] || FAILED=1
  echo "== $name: $result in ${dt}s"
  echo "| $name | $result | $dt | work/$name.log |" >> "$SUMMARY"
  return "$rc"
}

finish() {
  {
    echo
    echo "total: $(($(date +%s) - START))s; overall: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
    echo "per-step logs: logs.tar.gz (tar xzf logs.tar.gz -> work/*.log)"
  } >> "$SUMMARY"
  tar -czf "$OUT/logs.tar.gz" -C "$OUT" work && rm -rf "$LOGS"
  echo
  cat "$SUMMARY"
  exit "$1"
}

# --- 1. the machine ------------------------------------------------------------------------------------------
[ -d /usr/local/cuda/bin ] && export PATH=/usr/local/cuda/bin:$PATH
# shellcheck disable=SC2016  # expanded by the inner bash, on purpose
step environment 30 bash -c '
  uname -a; echo "cores: $(nproc)"; free -g | head -2; df -h . | tail -1
  for t in nvcc cmake ctest ninja g++ git; do printf "%-6s " "$t"; command -v "$t" || echo "MISSING"; done
  nvcc --version | tail -2; cmake --version | head -1; g++ --version | head -1
  ls -d /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h 2>/dev/null
  git status --short 2>/dev/null | head -20'

if ! step nvidia-smi 30 nvidia-smi; then
  if [ "${ALLOW_NO_GPU:-0}" != 1 ]; then
    echo "device-check: no GPU visible (nvidia-smi failed); stopping. Set ALLOW_NO_GPU=1 to run the CPU parts."
    echo "| stopped | no GPU visible | - | work/nvidia-smi.log |" >> "$SUMMARY"
    finish 2
  fi
  echo "device-check: no GPU, going on because ALLOW_NO_GPU=1"
fi

# --- 2. dependencies: the system's, else .device-deps ----------------------------------------------------------
CMAKE_EXTRA=()
have_system_deps() {
  [ -f /usr/include/boost/test/unit_test.hpp ] && [ -f /usr/include/boost/program_options.hpp ] &&
    ls /usr/lib/x86_64-linux-gnu/libboost_unit_test_framework.so >/dev/null 2>&1 &&
    { [ -f /usr/include/cblas.h ] || ls /usr/include/*/cblas.h /usr/include/*/*/cblas.h >/dev/null 2>&1; } &&
    [ -f /usr/include/png.h ] && [ -f /usr/include/zlib.h ]
}
if have_system_deps; then
  echo "dependencies: from the system" | tee "$LOGS/deps.log"
elif [ -d "$ROOT/.device-deps/root/usr" ]; then
  DEPS=$ROOT/.device-deps/root
  LIBDIR=$DEPS/usr/lib/x86_64-linux-gnu
  # OpenBLAS lives in a subfolder (Debian's alternatives symlinks are not made by dpkg -x).
  export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  CMAKE_EXTRA+=(-DCMAKE_PREFIX_PATH="$DEPS/usr" -DBoost_ROOT="$DEPS/usr" -DBoost_NO_SYSTEM_PATHS=ON
                -DCMAKE_LIBRARY_PATH="$LIBDIR/openblas-pthread;$LIBDIR" -DBLA_VENDOR=OpenBLAS)
  for d in "$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread" "$DEPS/usr/include/openblas"; do
    if [ -f "$d/cblas.h" ]; then CMAKE_EXTRA+=(-DJEBM_CBLAS_INCLUDE="$d"); break; fi
  done
  { echo "dependencies: from $DEPS"; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; printf '%s\n' "${CMAKE_EXTRA[@]}"; } \
    | tee "$LOGS/deps.log"
else
  echo "device-check: the system lacks Boost/OpenBLAS/libpng/zlib headers and there is no .device-deps/root;" \
       "prepare it with ../shared/scripts/device-deps.sh and carry \".device-deps\"" | tee "$LOGS/deps.log"
  echo "| dependencies | FAIL (none found) | 0 | work/deps.log |" >> "$SUMMARY"
  FAILED=1
  finish 1
fi

# --- 3. configure and build ----------------------------------------------------------------------------------
# Warnings are errors in CI on the project's compiler (Debian 12's GCC 12); the GPU machine's compiler may be
# another (GCC 13.3 there flags Boost.Test code), and a new warning must not cost a short GPU lease its tests.
# They are still collected into build-warnings.log. WERROR=ON restores -Werror.
if ! step configure 120 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJEBM_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES=90 -DJEBM_WERROR="${WERROR:-OFF}" "${CMAKE_EXTRA[@]}"; then
  echo "device-check: configure failed; nothing else can run"
  finish 1
fi
# -k 0: one broken room must not stop the others' targets (and their tests) from building.
step build 330 cmake --build "$BUILD" -j "$JOBS" -- -k 0
if [ -f "$LOGS/build.log" ]; then
  grep -E '(error|FAILED:)' "$LOGS/build.log" | head -40 > "$LOGS/build-errors.log"
  grep -E -A3 'warning:' "$LOGS/build.log" > "$LOGS/build-warnings.log"
  echo "| build warnings | $(grep -c 'warning:' "$LOGS/build.log") | - | work/build-warnings.log |" >> "$SUMMARY"
fi

# --- 4. tests --------------------------------------------------------------------------------------------------
# The suites with device cases first (test_cuda_*, NCCL in test_comm, CUDA cases in test_checkpoint, test_sample,
# test_trainer_logz); --verbose: they print their skip reasons, mismatches and timings even when they pass.
DEVICE_TESTS='cuda|test_comm$|test_checkpoint$|test_sample$|test_trainer_logz$'
step ctest-cuda 180 ctest --test-dir "$BUILD" -R "$DEVICE_TESTS" -j 4 --verbose --timeout 170 \
  --output-junit "$LOGS/ctest-cuda.xml"

# --- 4b. the official-size MNIST run, continued for MNIST_SECONDS -----------------------------------------
if [ "$MNIST_SECONDS" -gt 0 ] && [ -x "$BUILD/jebm" ]; then
  mnist_s=$(( MNIST_SECONDS < $(remaining) - 30 ? MNIST_SECONDS : $(remaining) - 30 ))
  if [ "$mnist_s" -ge 30 ]; then
    step mnist-official $((mnist_s + 40)) bash "$ROOT/scripts/device-mnist.sh" "$BUILD/jebm" "$OUT" "$mnist_s"
  else
    echo "| mnist-official | SKIPPED (under 30 s left) | 0 | - |" >> "$SUMMARY"
  fi
fi

# --- 5. benchmark ----------------------------------------------------------------------------------------------
# Two like-for-like comparisons, each against the same sampler workloads in PyTorch on the same GPU in the same run
# (experiments/bench/torch_reference.py reads the jebm logs and prints jebm/torch ratios):
#   strict FP32   jebm's default (FMA math)        vs torch --tf32 off   every section
#   TF32          jebm with JEBM_ALLOW_TF32=1      vs torch --tf32 on    ula_cnn and energy_cnn (convolution-bound)
# JEBM_CUDNN_VERBOSE=1 logs each cuDNN algorithm choice (runtime/cuda/conv.cu) into the bench logs.
# Missing PyTorch is reported, not counted as a failure.
if [ "${BENCH:-1}" = 0 ]; then
  echo "| bench | SKIPPED (BENCH=0) | 0 | - |" >> "$SUMMARY"
elif [ -x "$BUILD/jebm" ]; then
  step bench 150 env JEBM_CUDNN_VERBOSE=1 "$BUILD/jebm" bench --device cuda
  step bench-tf32-ula 100 env JEBM_ALLOW_TF32=1 JEBM_CUDNN_VERBOSE=1 "$BUILD/jebm" bench --device cuda --only ula_cnn
  step bench-tf32-energy 60 env JEBM_ALLOW_TF32=1 JEBM_CUDNN_VERBOSE=1 "$BUILD/jebm" bench --device cuda \
    --only energy_cnn
else
  echo "| bench | SKIPPED (no $BUILD/jebm) | 0 | - |" >> "$SUMMARY"
fi

if [ "${BENCH:-1}" = 0 ]; then
  :
elif python3 -c "import torch" >/dev/null 2>&1; then
  step torch-reference 100 python3 experiments/bench/torch_reference.py --device cuda --tf32 off \
    --compare "$LOGS/bench.log"
  step torch-reference-tf32 100 python3 experiments/bench/torch_reference.py --device cuda --tf32 on \
    --only ula_cnn,energy_cnn --compare "$LOGS/bench-tf32-ula.log" --compare "$LOGS/bench-tf32-energy.log"
else
  echo "| torch-reference | SKIPPED (python3 cannot import torch) | 0 | - |" >> "$SUMMARY"
fi

# The rest of the suite last: it needs no GPU (CI runs it), only a different compiler is worth checking here.
step ctest-rest 240 ctest --test-dir "$BUILD" -E "$DEVICE_TESTS" -j "$JOBS" --output-on-failure --timeout 230 \
  --output-junit "$LOGS/ctest-rest.xml"
# Which tests failed or were skipped, in one place.
for f in ctest-cuda ctest-rest; do
  [ -f "$LOGS/$f.log" ] || continue
  {
    echo
    echo "### $f"
    echo '```'
    grep -E '(tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|Not Run|test cases? out of [0-9]+ (skipped|failed)|Total Test time)' "$LOGS/$f.log" | head -40
    echo '```'
  } >> "$LOGS/tests-digest.md"
done
if [ -s "$LOGS/build-errors.log" ]; then
  { echo; echo "### build errors (first lines)"; echo '```'; cut -c1-300 "$LOGS/build-errors.log" | head -20; echo '```'; } \
    >> "$LOGS/tests-digest.md"
fi
[ -f "$LOGS/tests-digest.md" ] && cat "$LOGS/tests-digest.md" >> "$SUMMARY"
# How jebm's cuDNN algorithms were chosen (by timing, by the heuristic after a failed Find, or the fallback).
for log in bench bench-tf32-ula bench-tf32-energy; do
  [ -f "$LOGS/$log.log" ] || continue
  by_find=$(grep -c '^jebm: cudnn .*, by find' "$LOGS/$log.log")
  by_heuristic=$(grep -c '^jebm: cudnn .*, by heuristic' "$LOGS/$log.log")
  by_fallback=$(grep -c '^jebm: cudnn .*, by fallback' "$LOGS/$log.log")
  find_failed=$(grep -c '^jebm: cudnn find failed' "$LOGS/$log.log")
  echo "- $log: cuDNN choices by find $by_find, by heuristic $by_heuristic, fallback $by_fallback, find failed" \
       "$find_failed (work/$log.log)" >> "$LOGS/cudnn-digest.md"
done
[ -f "$LOGS/cudnn-digest.md" ] && { echo; cat "$LOGS/cudnn-digest.md"; } >> "$SUMMARY"
# ratio_table LOG TITLE: the jebm/torch table that LOG (a torch-reference log) ends with, under TITLE.
ratio_table() {
  if [ -f "$LOGS/$1.log" ] && grep -q '^jebm / torch' "$LOGS/$1.log"; then
    { echo; echo "### $2"; echo '```'; sed -n '/^jebm \/ torch/,$p' "$LOGS/$1.log"; echo '```'; } >> "$SUMMARY"
  else
    { echo; echo "### $2"; echo "(no ratio table: see work/$1.log if it exists)"; } >> "$SUMMARY"
  fi
}
ratio_table torch-reference "jebm / torch, strict FP32 (jebm default vs torch --tf32 off), same GPU, same run"
ratio_table torch-reference-tf32 "jebm / torch, TF32 (jebm JEBM_ALLOW_TF32=1 vs torch --tf32 on), same GPU, same run"
finish "$([ "$FAILED" = 0 ] && echo 0 || echo 1)"
