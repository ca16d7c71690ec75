#!/usr/bin/env bash
# Strong and weak scaling of `jebm gmm` over MPI ranks on this machine: milliseconds per iteration of
# the Jarzynski run at the paper's sizes (d = 50; N walkers and N data points), one OpenMP thread per rank, next to
# one rank with the same number of threads. Not a test: a measurement, printed as a Markdown table.
#   scripts/scaling-bench.sh [JEBM] [ITERATIONS] [MAX_RANKS]    (defaults: build/release/jebm, 400, nproc)
# Strong: N = 10^4 on 1..MAX_RANKS ranks. Weak: N = 5000 per rank. Every run also checks that its final mode
# weights equal the one-rank run's (the results do not depend on the rank count).
# With MNIST_DATA=DIR (the MNIST files), also `jebm mnist` with the CPU preset (experiments/presets/mnist-cpu.ini,
# one epoch, --shard-block 64): milliseconds per update, and the final ESS / log Z line of each run, which must
# be the same for every rank count.
set -euo pipefail
JEBM=${1:-build/release/jebm}
ITERS=${2:-400}
MAX=${3:-$(nproc)}
# Idle threads wait as the jebm program sets for itself (experiments/main.cpp), fixed here so that every rank
# count runs the same way.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
# OpenMPI refuses root without these (containers, CI); shared-memory single copy is often forbidden there too.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# run RANKS THREADS N -> "ms_per_iteration final_weights"
run() {
  local np=$1 th=$2 n=$3 out
  local args=(gmm --algo jarzynski --iterations "$ITERS" --walkers "$n" --samples "$n" --threads "$th" --no-progress)
  if [ "$np" -eq 1 ]; then out=$("$JEBM" "${args[@]}"); else out=$(mpirun -np "$np" --oversubscribe "$JEBM" "${args[@]}"); fi
  awk '/^jarzynski /{print $NF, $2}' <<<"$out"
}
echo "jebm gmm, d = 50, $ITERS iterations, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| scaling | ranks x threads | N walkers = N data | ms / iteration | speed-up | efficiency | final weights |"
echo "|---|---|---|---|---|---|---|"
read -r base wbase < <(run 1 1 10000)
echo "| reference | 1 x 1 | 10000 | $base | 1.00 | 100 % | $wbase |"
for np in $(seq 2 "$MAX"); do
  read -r t w < <(run 1 "$np" 10000)
  echo "| OpenMP | 1 x $np | 10000 | $t | $(awk -v a="$base" -v b="$t" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$base" -v b="$t" -v p="$np" 'BEGIN{printf "%.0f %%", 100*a/b/p}') | $w |"
  read -r t w < <(run "$np" 1 10000)
  [ "$w" = "$wbase" ] || echo "WARNING: $np ranks ended with weights $w, one rank with $wbase" >&2
  echo "| strong (MPI) | $np x 1 | 10000 | $t | $(awk -v a="$base" -v b="$t" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$base" -v b="$t" -v p="$np" 'BEGIN{printf "%.0f %%", 100*a/b/p}') | $w |"
done
read -r wb ww < <(run 1 1 5000)
echo "| weak reference | 1 x 1 | 5000 | $wb | | 100 % | $ww |"
for np in $(seq 2 "$MAX"); do
  read -r t w < <(run "$np" 1 $((5000 * np)))
  echo "| weak (MPI) | $np x 1 | $((5000 * np)) | $t | | $(awk -v a="$wb" -v b="$t" 'BEGIN{printf "%.0f %%", 100*a/b}') | $w |"
done

[ -n "${MNIST_DATA:-}" ] || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# mnist RANKS THREADS -> "ms_per_update | final line"
mnist() {
  local np=$1 th=$2 out
  local args=(mnist --config experiments/presets/mnist-cpu.ini --data "$MNIST_DATA" --epochs 1 --burn-in 10
              --shard-block 64 --threads "$th" --no-progress --out "$tmp/np$np-th$th" --force)
  if [ "$np" -eq 1 ]; then out=$("$JEBM" "${args[@]}"); else out=$(mpirun -np "$np" --oversubscribe "$JEBM" "${args[@]}"); fi
  local ms final
  ms=$(grep -o '[0-9.]* ms/update' <<<"$out" | head -1 | cut -d' ' -f1)
  final=$(grep -o 'final ESS.*' <<<"$out" | head -1)
  echo "$ms | $final"
}
echo
echo "jebm mnist, CPU preset, 1 epoch (21 updates of 20 moves of 128 walkers), --shard-block 64"
echo
echo "| ranks x threads | ms / update | speed-up | final ESS, log Z, CE estimate |"
echo "|---|---|---|---|"
IFS='|' read -r mb fb < <(mnist 1 1)
echo "| 1 x 1 | $mb | 1.00 | $fb |"
for np in $(seq 2 "$MAX"); do
  IFS='|' read -r t f < <(mnist 1 "$np")
  echo "| 1 x $np (OpenMP) | $t | $(awk -v a="$mb" -v b="$t" 'BEGIN{printf "%.2f", a/b}') | $f |"
  IFS='|' read -r t f < <(mnist "$np" 1)
  [ "$f" = "$fb" ] || echo "WARNING: $np ranks ended with '$f', one rank with '$fb'" >&2
  echo "| $np x 1 (MPI) | $t | $(awk -v a="$mb" -v b="$t" 'BEGIN{printf "%.2f", a/b}') | $f |"
done
