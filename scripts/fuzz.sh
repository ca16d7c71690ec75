#!/usr/bin/env bash
# Long fuzz campaign over jebm's loaders and parsers (tests/fuzz). Two engines:
#   scripts/fuzz.sh driver  SECONDS [TARGET|all|loaders|parsers] [SEED]
#       the seeded mutation driver under ASan+UBSan (asan preset): deterministic, reproducible from SEED;
#   scripts/fuzz.sh libfuzzer SECONDS [TARGET|all]
#       coverage-guided libFuzzer (fuzz preset, clang), starting from the seeds the driver writes.
# Findings: fuzz-crash-<target>.bin (driver) or crash-*/timeout-* (libFuzzer: an input running > 10 s is a hang)
# in build/fuzz-campaign/. Runs niced.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:?usage: scripts/fuzz.sh driver|libfuzzer SECONDS [TARGET] [SEED]}
seconds=${2:?usage: scripts/fuzz.sh driver|libfuzzer SECONDS [TARGET] [SEED]}
target=${3:-all}
seed=${4:-$(date +%s)}
out=build/fuzz-campaign
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

case "$engine" in
  driver)
    cmake --preset asan >/dev/null
    nice cmake --build --preset asan --target jebm_fuzz
    # --seconds is per target: each selected target gets the whole budget.
    (cd "$out" && nice ../asan/tests/jebm_fuzz --target "$target" --seconds "$seconds" --seed "$seed")
    ;;
  libfuzzer)
    cmake --preset fuzz >/dev/null
    targets=$target
    [ "$target" = all ] && targets="safetensors idx_images idx_labels cifar10 png json options image_ebm_config gmm_config"
    nice cmake --build --preset fuzz --target jebm_fuzz $(for t in $targets; do echo "jebm_fuzz_$t"; done)
    build/fuzz/tests/jebm_fuzz --target all --write-seeds "$out/seeds"
    for t in $targets; do
      mkdir -p "$out/corpus/$t"
      (cd "$out" && nice ../fuzz/tests/jebm_fuzz_$t -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 -timeout=10 \
         -print_final_stats=1 "corpus/$t" "seeds/$t")
    done
    ;;
  *) echo "unknown engine '$engine' (driver or libfuzzer)" >&2; exit 2 ;;
esac
