#!/usr/bin/env bash
# jebm against PyTorch over several rounds: `jebm bench --compare` for the gmm, energy_cnn and ula_cnn (MNIST)
# sections at 2 then 1 threads, ROUNDS times, then one Markdown table with each side's median over the rounds, their
# range, and the ratio of the medians. Not a test: a measurement. A single bench run on a shared or virtual machine
# can lose a core for seconds; the median over rounds and the printed range show how far to trust a ratio.
#   scripts/bench-rounds.sh [JEBM] [PYTHON] [ROUNDS] [OUT]
#   (defaults: build/release/jebm, python3 (it must have torch), 3, bench-rounds-<date>)
# The raw outputs stay in OUT/r<round>-<section>-t<threads>.txt; the table goes to stdout and OUT/table.md.
set -euo pipefail
JEBM=${1:-build/release/jebm}
PY=${2:-python3}
ROUNDS=${3:-3}
OUT=${4:-bench-rounds-$(date -u +%Y%m%dT%H%M%SZ)}
SECTIONS=${SECTIONS:-"gmm energy_cnn ula_cnn"}  # SECTIONS="gmm" scripts/bench-rounds.sh ... for fewer
[[ -x $JEBM ]] || { echo "bench-rounds.sh: $JEBM is not an executable (build it first, or name it)" >&2; exit 2; }
"$PY" -c "import torch" 2>/dev/null || { echo "bench-rounds.sh: '$PY' cannot import torch" >&2; exit 2; }
mkdir -p "$OUT"
echo "start $(date -u +%FT%TZ); $("$JEBM" --version | head -1); load $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/log.txt"
for r in $(seq 1 "$ROUNDS"); do
  for t in 2 1; do
    for s in $SECTIONS; do
      "$JEBM" bench --compare --only "$s" --threads "$t" --net mnist --repeat 7 --python "$PY" \
        > "$OUT/r$r-$s-t$t.txt" 2>&1 || { echo "bench-rounds.sh: round $r, $s at $t threads failed: see $OUT/r$r-$s-t$t.txt" >&2; exit 1; }
    done
  done
  echo "round $r done $(date -u +%T)" >> "$OUT/log.txt"
done
# Each --compare output ends with "workload  jebm_ms  torch_ms  ratio" rows; the peak line names the FMA peak.
"$PY" - "$OUT" <<'EOF' | tee "$OUT/table.md"
import glob, re, statistics, sys
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(f"{out}/r*-t*.txt")):
    t = re.search(r"-t(\d+)\.txt$", f).group(1)
    for line in open(f, errors="replace"):
        m = re.match(r"^(\S+/.*?)\s+([0-9.]+)\s+([0-9.]+)\s+[0-9.]+x$", line.rstrip())
        if m:
            rows.setdefault((int(t), m.group(1)), []).append((float(m.group(2)), float(m.group(3))))
print("| workload | threads | rounds | jebm ms: median (range) | PyTorch ms: median (range) | PyTorch / jebm |")
print("|---|---|---|---|---|---|")
for (t, name), v in sorted(rows.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
    j = [a for a, _ in v]
    p = [b for _, b in v]
    mj, mp = statistics.median(j), statistics.median(p)
    print(f"| {name} | {t} | {len(v)} | {mj:.2f} ({min(j):.2f}-{max(j):.2f}) | {mp:.2f} ({min(p):.2f}-{max(p):.2f}) "
          f"| {mp / mj:.2f}x |")
EOF
