#!/usr/bin/env bash
# Continue the official-size MNIST run (`jebm mnist --device cuda`, every option at the official code's values) for a
# bounded number of seconds, so that its 600 epochs accumulate over several short GPU runs.
#
# The run lives in the repository, docs/mnist-official/run/ (options.txt, metrics.csv, checkpoint, last grid), so
# that the next run, on any machine, resumes where the last one stopped. This script:
#   1. copies that run (if any) to a scratch folder and resumes it there with --resume, or starts it;
#   2. stops it with SIGINT after SECONDS: jebm then writes its checkpoint at the update it had reached (the same
#      bit-identical resume as Ctrl-C, tested in tests/test_image_ebm.cpp);
#   3. packs the run folder into OUTDIR/mnist-official.tar.gz. Unpack it over docs/mnist-official/run/ on the
#      development machine and commit it (scripts/device-mnist.sh --unpack TARBALL does that).
# Data: .device-data/mnist, the 9800 training images the run uses (scripts/mnist-subset.py; carried, git-ignored).
# Classifier for the per-digit weights: docs/mnist-official/classifier.safetensors (jebm mnist-classifier
# --digits 2,3,6, 28x28; its options.txt beside it).
#
# Usage: scripts/device-mnist.sh JEBM_BINARY OUTDIR SECONDS      (called by scripts/device-check.sh; DEVICE=cpu
#        starts a fresh run on the CPU instead, to try the script without a GPU)
#        scripts/device-mnist.sh --unpack TARBALL                 (on the development machine)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEP=$ROOT/docs/mnist-official/run

if [ "${1:-}" = "--unpack" ]; then
  [ "$#" -eq 2 ] && [ -f "$2" ] || { echo "usage: $0 --unpack TARBALL (an existing file)" >&2; exit 64; }
  tmp=$(mktemp -d)
  tar -xzf "$2" -C "$tmp" || { echo "device-mnist: cannot unpack $2" >&2; rm -rf "$tmp"; exit 1; }
  [ -f "$tmp/run/checkpoint.safetensors" ] && [ -f "$tmp/run/options.txt" ] ||
    { echo "device-mnist: $2 holds no run/checkpoint.safetensors + run/options.txt" >&2; rm -rf "$tmp"; exit 1; }
  rm -rf "$KEEP.new" && mv "$tmp/run" "$KEEP.new" && rm -rf "$KEEP" && mv "$KEEP.new" "$KEEP" && rm -rf "$tmp"
  echo "device-mnist: $KEEP now holds the run from $2"
  tail -n 1 "$KEEP/metrics.csv" 2>/dev/null || echo "(no metrics.csv yet: the run is still in its burn-in)"
  exit 0
fi

if [ "$#" -ne 3 ]; then
  echo "usage: $0 JEBM_BINARY OUTDIR SECONDS | $0 --unpack TARBALL" >&2
  exit 64
fi
JEBM=$1 OUT=$2 SECONDS_LEFT=$3
DATA=$ROOT/.device-data/mnist
CLASSIFIER=$ROOT/docs/mnist-official/classifier.safetensors
[ -x "$JEBM" ] || { echo "device-mnist: no jebm binary at $JEBM" >&2; exit 1; }
[ -f "$DATA/train-images-idx3-ubyte.gz" ] ||
  { echo "device-mnist: no $DATA/train-images-idx3-ubyte.gz (run scripts/mnist-subset.py and carry .device-data)" >&2; exit 1; }
[ -f "$CLASSIFIER" ] || { echo "device-mnist: no classifier at $CLASSIFIER" >&2; exit 1; }

WORK=$(mktemp -d)/run
cd "$ROOT" || exit 1
if [ -f "$KEEP/checkpoint.safetensors" ]; then
  cp -r "$KEEP" "$WORK"
  echo "device-mnist: resuming the run kept in $KEEP"
  cmd=("$JEBM" mnist --resume "$WORK")
else
  echo "device-mnist: starting the official-size run"
  # Relative paths: options.txt is read again by the next --resume from another checkout.
  cmd=("$JEBM" mnist --data .device-data/mnist --classifier docs/mnist-official/classifier.safetensors
       --device "${DEVICE:-cuda}" --out "$WORK")
fi
echo "device-mnist: ${cmd[*]} (stopped with SIGINT after ${SECONDS_LEFT}s)"
timeout -s INT --kill-after=30 "$SECONDS_LEFT" "${cmd[@]}"
rc=$?
# 130: stopped by the SIGINT, checkpoint written; 0: the run reached its last epoch.
if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 124 ]; then
  echo "device-mnist: jebm exited with $rc; the run folder is packed anyway for inspection"
fi
# Only the newest grid travels back (each is ~100 KB; the tarball must stay well under 16 MiB).
latest=$(ls -1 "$WORK"/samples_*.png 2>/dev/null | sort -V | tail -n 1)
for f in "$WORK"/samples_*.png; do [ -e "$f" ] && [ "$f" != "$latest" ] && rm -f "$f"; done
tar -czf "$OUT/mnist-official.tar.gz" -C "$(dirname "$WORK")" run
echo "device-mnist: packed $(du -h "$OUT/mnist-official.tar.gz" | cut -f1) into $OUT/mnist-official.tar.gz"
tail -n 2 "$WORK/metrics.csv" 2>/dev/null || echo "device-mnist: no metrics.csv yet (the run is still in its burn-in)"
[ "$rc" = 0 ] || [ "$rc" = 130 ] || [ "$rc" = 124 ]
