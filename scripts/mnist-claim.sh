#!/usr/bin/env bash
# The paper's MNIST claim at CPU scale: trains the 3-digit classifier (on the preset's image size),
# then runs the preset (PRESET, default experiments/presets/mnist-cpu-14x14.ini) for Jarzynski and PCD on 2 seeds
# (same seed, same budget for both algorithms),
# and prints one table row per run from its metrics.csv: the weighted per-digit fractions at the end, their
# total-variation distance to 4/7, 2/7, 1/7, the fraction of walkers the classifier labels with probability > 0.9,
# the ESS (final, min and median over the logged updates) and the wall time.
#
# Usage: scripts/mnist-claim.sh DATA_DIR OUT_DIR [SEEDS (default "1 2")] [PARALLEL (default 1)]
#   JEBM (default: build/release/jebm) names the binary; THREADS (default 2) the OpenMP threads per run.
#   PARALLEL=2 runs the two algorithms of a seed side by side (give each THREADS=1 on a 2-core machine).
#   TABLE_ONLY=1 prints the table of runs already in OUT_DIR (OUT_DIR/{jarzynski,pcd}-sSEED) without running.
#   EXTRA_ARGS="--walkers 1024" adds options to every run (both algorithms), e.g. to try one lever of the preset.
#   PRESET=experiments/presets/mnist-cpu.ini runs the 28x28 preset (a negative result, docs/experiments.md).
# Each run is an ordinary `jebm mnist` run directory under OUT_DIR (resumable, metrics.svg, samples_*.png).
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: $0 DATA_DIR OUT_DIR [SEEDS] [PARALLEL]" >&2
  exit 64
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=$1 OUT=$2 SEEDS=${3:-1 2} PARALLEL=${4:-1}
JEBM=${JEBM:-$ROOT/build/release/jebm}
THREADS=${THREADS:-2}
PRESET=${PRESET:-$ROOT/experiments/presets/mnist-cpu-14x14.ini}
# The classifier must see the walkers' image size: the preset's `downsample` (1 when absent).
DOWNSAMPLE=$(awk -F'[ =]+' '$1 == "downsample" { print $2 }' "$PRESET" 2>/dev/null)
DOWNSAMPLE=${DOWNSAMPLE:-1}
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  [ -x "$JEBM" ] || { echo "mnist-claim: no jebm binary at $JEBM (build first, or set JEBM)" >&2; exit 1; }
  [ -d "$DATA" ] || { echo "mnist-claim: DATA_DIR '$DATA' is not a directory" >&2; exit 1; }
  [ -f "$PRESET" ] || { echo "mnist-claim: PRESET '$PRESET' is not a file" >&2; exit 1; }
  mkdir -p "$OUT"

  CLF=$OUT/classifier-ds$DOWNSAMPLE/classifier.safetensors
  [ -f "$CLF" ] || "$JEBM" mnist-classifier --data "$DATA" --out "$OUT/classifier-ds$DOWNSAMPLE" \
    --downsample "$DOWNSAMPLE" --threads "$THREADS"

  run_one() {  # ALGO SEED: one run, its wall time in OUT/ALGO-sSEED/wall_s
    local dir=$OUT/$1-s$2 t0
    t0=$(date +%s)
    "$JEBM" mnist --config "$PRESET" --data "$DATA" --classifier "$CLF" --out "$dir" --algo "$1" --seed "$2" \
      --threads "$THREADS" ${EXTRA_ARGS:-} > "$OUT/$1-s$2.log" 2>&1
    echo $(($(date +%s) - t0)) > "$dir/wall_s"
  }
  for seed in $SEEDS; do
    if [ "$PARALLEL" = 2 ]; then
      run_one jarzynski "$seed" & run_one pcd "$seed" & wait
    else
      run_one jarzynski "$seed"
      run_one pcd "$seed"
    fi
  done
fi

echo
echo "| run | digit 2 | digit 3 | digit 6 | TV to (4,2,1)/7 | confident (p > 0.9) | ESS end / min / median | wall |"
echo "|---|---|---|---|---|---|---|---|"
# The table: the last logged row of each metrics.csv, columns found by name (plain POSIX awk).
col_of() { head -n 1 "$1" | tr ',' '\n' | grep -n -x "$2" | cut -d: -f1; }
for seed in $SEEDS; do
  for algo in jarzynski pcd; do
    csv=$OUT/$algo-s$seed/metrics.csv
    tv=$(col_of "$csv" tv_to_target) ess=$(col_of "$csv" ess)
    # ESS over the rows where the classifier metrics were logged, sorted: min and median.
    mapfile -t e < <(awk -F, -v t="$tv" -v c="$ess" 'NR > 1 && $t != "nan" { print $c }' "$csv" | sort -g)
    wall=$(cat "$OUT/$algo-s$seed/wall_s" 2>/dev/null || echo 0)
    awk -F, -v t="$tv" -v c="$ess" -v w2="$(col_of "$csv" weight_2)" -v cf="$(col_of "$csv" confident_frac)" \
        -v run="$algo, seed $seed" -v emin="${e[0]}" -v emed="${e[$(( ${#e[@]} / 2 ))]}" -v wall="$wall" '
      NR > 1 && $t != "nan" { last = $0 }
      END {
        split(last, r, ",")
        printf "| %s | %.3f | %.3f | %.3f | %.3f | %.2f | %.0f / %.0f / %.0f | %d:%02d |\n", run, r[w2], r[w2 + 1],
               r[w2 + 2], r[t], r[cf], r[c], emin, emed, int(wall / 60), wall % 60
      }' "$csv"
  done
done
echo "| target | 0.571 | 0.286 | 0.143 | 0 | | | |"
