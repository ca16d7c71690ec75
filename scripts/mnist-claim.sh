#!/usr/bin/env bash
# The paper's MNIST claim at CPU scale, on one or more digit sets and several seeds: trains each set's classifier
# (at the preset's image size), runs the preset (PRESET, default experiments/presets/mnist-cpu-14x14.ini) for each
# run kind and seed (same seed, same budget for every kind), and prints
# - one row per run from its metrics.csv: the weighted digit fractions at the end, the total-variation distance
#   to the set's proportions at the end and averaged over the last 10 logged epochs (the last logged row of each
#   of the run's last 10 epochs), the fraction of walkers the classifier labels with p > 0.9, the ESS (end, min,
#   median), the resamplings and the wall time, and with a reject classifier the share of weight it rejects;
# - per set and run kind: mean ± standard error over the finished seeds of both TVs;
# - per set, each kind against pcd: the difference of the last-10 means and two standard errors of it
#   (sqrt(SE_a^2 + SE_b^2)); a kind is called closer (or further) only where |difference| > 2 SE.
#
# Usage: scripts/mnist-claim.sh DATA_DIR OUT_DIR [SEEDS (default "1 2")] [PARALLEL (default 1)]
#   SETS (default: the preset's digits and counts, 2,3,6:800,400,200 for the 14x14 preset): space-separated
#   DIGITS:COUNTS, the counts in the digits' order, e.g. SETS="2,3,6:800,400,200 0,5,7:400,200,800".
#   RUNS (default "jarzynski pcd"): run kinds, ALGO or ALGO-KERNEL (jarzynski-tempered adds --weight-kernel tempered).
#   JEBM (default: build/release/jebm) names the binary; THREADS (default 2) the OpenMP threads per run.
#   PARALLEL=2 runs two runs side by side (give each THREADS=1 on a 2-core machine).
#   TABLE_ONLY=1 prints the tables of the runs already in OUT_DIR without running anything (unfinished runs are
#   listed with their epochs and left out of the means).
#   EXTRA_ARGS="--walkers 1024" adds options to every run, e.g. to try one lever of the preset.
#   PRESET=experiments/presets/mnist-cpu.ini runs the 28x28 preset (a negative result, docs/experiments.md).
#   REJECT (default 1) trains and uses classifiers with a reject class (`jebm mnist-classifier --reject`): the
#   digit fractions count the weight of digit-like walkers only, and the table adds the rejected share. REJECT=0
#   uses 3-class classifiers, which give noise walkers a digit too. Give each an OUT_DIR of its own (the run
#   directories keep their names; the table reads what each run's classifier measured).
# Layout: OUT_DIR/classifier-dSET-dsK-reject/ (classifier-dSET-dsK/ with REJECT=0) and OUT_DIR/dSET/RUN-sSEED/ (an
# ordinary `jebm mnist` run directory, resumable), SET the digits without commas (d236); OUT_DIR/dSET/RUN-sSEED.log
# the run's output.
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: $0 DATA_DIR OUT_DIR [SEEDS] [PARALLEL]   (env: SETS RUNS JEBM THREADS PRESET TABLE_ONLY EXTRA_ARGS REJECT)" >&2
  exit 64
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=$1 OUT=$2 SEEDS=${3:-1 2} PARALLEL=${4:-1}
RUNS=${RUNS:-jarzynski pcd}
JEBM=${JEBM:-$ROOT/build/release/jebm}
THREADS=${THREADS:-2}
PRESET=${PRESET:-$ROOT/experiments/presets/mnist-cpu-14x14.ini}
preset_key() { awk -F'[ =]+' -v k="$1" '$1 == k { print $2 }' "$PRESET" 2>/dev/null; }
if [ -z "${SETS:-}" ]; then  # the preset's own digits and counts (jebm mnist's defaults where it has none)
  d=$(preset_key digits) c=$(preset_key counts)
  SETS=${d:-2,3,6}:${c:-5600,2800,1400}
fi
for s in $SETS; do
  [[ $s =~ ^[0-9](,[0-9])+:[0-9]+(,[0-9]+)+$ ]] || { echo "mnist-claim: SETS entry '$s' is not DIGITS:COUNTS (e.g. 2,3,6:800,400,200)" >&2; exit 64; }
done
for r in $RUNS; do
  [[ $r =~ ^(jarzynski|pcd)(-(2h|sigma|tempered))?$ ]] || { echo "mnist-claim: RUNS entry '$r' is not ALGO or ALGO-KERNEL (jarzynski, pcd, jarzynski-tempered, ...)" >&2; exit 64; }
done
set_dir() { echo "d$(echo "${1%%:*}" | tr -d ,)"; }
REJECT_ARGS=() REJECT_SUFFIX=
[ "${REJECT:-1}" = 1 ] && REJECT_ARGS=(--reject) REJECT_SUFFIX=-reject

if [ "${TABLE_ONLY:-0}" != 1 ]; then
  [ -x "$JEBM" ] || { echo "mnist-claim: no jebm binary at $JEBM (build first, or set JEBM)" >&2; exit 1; }
  [ -d "$DATA" ] || { echo "mnist-claim: DATA_DIR '$DATA' is not a directory" >&2; exit 1; }
  [ -f "$PRESET" ] || { echo "mnist-claim: PRESET '$PRESET' is not a file" >&2; exit 1; }
  # The classifier must see the walkers' image size: the preset's `downsample` (1 when absent).
  DOWNSAMPLE=$(preset_key downsample)
  DOWNSAMPLE=${DOWNSAMPLE:-1}
  mkdir -p "$OUT"
  run_one() {  # SET RUN SEED: one run, its wall time in its directory's wall_s
    local digits=${1%%:*} counts=${1##*:} sd run=$2 seed=$3 dir t0 algo kernel=()
    sd=$(set_dir "$1")
    dir=$OUT/$sd/$run-s$seed
    algo=${run%%-*}
    [ "$run" != "$algo" ] && kernel=(--weight-kernel "${run#*-}")
    t0=$(date +%s)
    "$JEBM" mnist --config "$PRESET" --data "$DATA" --digits "$digits" --counts "$counts" \
      --classifier "$OUT/classifier-$sd-ds$DOWNSAMPLE$REJECT_SUFFIX/classifier.safetensors" --out "$dir" --algo "$algo" \
      "${kernel[@]}" --seed "$seed" --threads "$THREADS" ${EXTRA_ARGS:-} > "$OUT/$sd/$run-s$seed.log" 2>&1
    echo $(($(date +%s) - t0)) > "$dir/wall_s"
  }
  for set in $SETS; do
    sd=$(set_dir "$set")
    mkdir -p "$OUT/$sd"
    clf=$OUT/classifier-$sd-ds$DOWNSAMPLE$REJECT_SUFFIX
    [ -f "$clf/classifier.safetensors" ] || "$JEBM" mnist-classifier --data "$DATA" --out "$clf" \
      --digits "${set%%:*}" --downsample "$DOWNSAMPLE" --threads "$THREADS" "${REJECT_ARGS[@]}"
    for seed in $SEEDS; do
      running=0
      for run in $RUNS; do
        if [ "$PARALLEL" = 2 ]; then
          run_one "$set" "$run" "$seed" &
          running=$((running + 1))
          [ "$running" -lt 2 ] || { wait; running=0; }
        else
          run_one "$set" "$run" "$seed"
        fi
      done
      wait
    done
  done
fi

# One line per existing run: set, run, seed, done (0/1), epochs, 3 weights, TV end, TV last-10 mean, confident,
# ESS end/min/median, resamplings, wall seconds, rejected weight at the end ("-" without a reject classifier).
# Columns are found by name (plain POSIX awk).
stats() {
  local csv=$1/metrics.csv epochs
  epochs=$(awk -F' = ' '$1 == "epochs" { print $2 }' "$1/options.txt")
  awk -F, -v want="$epochs" -v wall="$(cat "$1/wall_s" 2>/dev/null || echo -1)" '
    NR == 1 { for (k = 1; k <= NF; ++k) { c[$k] = k; if ($k ~ /^weight_/ && !w1) w1 = k }; next }
    { any = $0 }
    $c["tv_to_target"] != "nan" {
      last = $0; n++; ess[n] = $c["ess"] + 0
      ep = $c["epoch"] + 0; if (!(ep in tv)) order[++ne] = ep; tv[ep] = $c["tv_to_target"] + 0
    }
    END {
      if (!n && any == "") { print "0 0 nan nan nan nan nan nan nan nan nan 0", wall, "-"; exit }
      if (!n) {  # every logged row without a TV: the reject class took all the weight
        split(any, r, ","); e = r[c["epoch"]] + 1
        printf "%d %d nan nan nan nan nan nan nan nan nan %d %d %.3f\n", (e >= want ? 1 : 0), e, r[c["resamplings"]],
               wall, r[c["rejected_weight"]]
        exit
      }
      split(last, r, ",")
      s = 0; m = ne < 10 ? ne : 10
      for (k = ne - m + 1; k <= ne; ++k) s += tv[order[k]]
      for (i = 2; i <= n; ++i) { v = ess[i]; for (j = i - 1; j >= 1 && ess[j] > v; --j) ess[j + 1] = ess[j]; ess[j + 1] = v }
      e = r[c["epoch"]] + 1
      rej = ("rejected_weight" in c) ? sprintf("%.3f", r[c["rejected_weight"]]) : "-"
      printf "%d %d %.3f %.3f %.3f %.3f %.3f %.2f %.0f %.0f %.0f %d %d %s\n", (e >= want ? 1 : 0), e, r[w1], r[w1 + 1],
             r[w1 + 2], r[c["tv_to_target"]], s / m, r[c["confident_frac"]], r[c["ess"]], ess[1], ess[int(n / 2) + 1],
             r[c["resamplings"]], wall, rej
    }' "$csv"
}

ALL=$(mktemp)
trap 'rm -f "$ALL"' EXIT
for set in $SETS; do
  sd=$(set_dir "$set")
  for seed in $SEEDS; do
    for run in $RUNS; do
      dir=$OUT/$sd/$run-s$seed
      [ -f "$dir/metrics.csv" ] && echo "${set%%:*}/${set##*:} $run $seed $(stats "$dir")" >> "$ALL"
    done
  done
done

# The rejected share gets a column when some run has it (a reject classifier's metrics.csv).
REJ=$(awk '$17 != "-" { print 1; exit }' "$ALL")
echo
echo "| set (digits/counts) | run | seed | epochs | weights at the end${REJ:+ (of the weight not rejected)} |${REJ:+ rejected weight |} TV end | TV last 10 epochs | confident (p > 0.9) | ESS end / min / median | resamplings | wall |"
echo "|---|---|---|---|---|${REJ:+---|}---|---|---|---|---|---|"
awk -v rej="${REJ:-0}" '{ w = $16 < 0 ? "-" : sprintf("%d:%02d", int($16 / 60), $16 % 60)
       printf "| %s | %s | %s | %s%s | %s / %s / %s |%s %s | %s | %s | %s / %s / %s | %s | %s |\n", $1, $2, $3, $5,
              $4 ? "" : " (unfinished)", $6, $7, $8, rej ? " " $17 " |" : "", $9, $10, $11, $12, $13, $14, $15, w }' "$ALL"

echo
echo "Finished seeds only (with a TV: not all weight rejected); mean ± standard error over seeds (SE = sd / sqrt(n))."
echo
echo "| set (digits/counts) | run | seeds | TV last 10 epochs | TV end |"
echo "|---|---|---|---|---|"
awk '$4 == 1 && $10 != "nan" { k = $1 " " $2; n[k]++; a[k] += $10; a2[k] += $10 * $10; b[k] += $9; b2[k] += $9 * $9; if (!(k in seen)) { seen[k] = 1; keys[++nk] = k } }
  function se(s, s2, m) { return m > 1 ? sqrt((s2 - s * s / m) / (m - 1) / m) : 0 }
  END {
    for (i = 1; i <= nk; ++i) {
      k = keys[i]; split(k, f, " "); m = n[k]
      printf "| %s | %s | %d | %.3f ± %.3f | %.3f ± %.3f |\n", f[1], f[2], m, a[k] / m, se(a[k], a2[k], m), b[k] / m, se(b[k], b2[k], m)
      mean[k] = a[k] / m; sem[k] = se(a[k], a2[k], m); cnt[k] = m
    }
    print ""
    print "| set (digits/counts) | comparison (last-10 TV) | difference | 2 SE | reading |"
    print "|---|---|---|---|---|"
    for (i = 1; i <= nk; ++i) {
      k = keys[i]; split(k, f, " "); p = f[1] " pcd"
      if (f[2] == "pcd" || !(p in mean)) continue
      d = mean[k] - mean[p]; s2 = 2 * sqrt(sem[k] ^ 2 + sem[p] ^ 2)
      if (cnt[k] < 2 || cnt[p] < 2) r = "no claim (fewer than 2 seeds)"
      else if (d < -s2) r = f[2] " closer than pcd"
      else if (d > s2) r = "pcd closer than " f[2]
      else r = "no claim (within 2 SE)"
      printf "| %s | %s - pcd | %+.3f | %.3f | %s |\n", f[1], f[2], d, s2, r
    }
  }' "$ALL"
