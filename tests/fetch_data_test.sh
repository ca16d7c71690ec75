#!/usr/bin/env bash
# Tests scripts/fetch-data.sh offline against file:// mirrors it makes: download and verify (MNIST and CIFAR-10
# layouts, small fake files whose sums go into an override sums file), skip when present and valid, refusal of a
# wrong checksum (nothing written), a clear failure without a mirror or network, bad arguments. With the
# project's offline MNIST copy present (../shared/data or JEBM_TEST_SHARED_DATA), also the real files against the
# committed sums. Usage: tests/fetch_data_test.sh SOURCE_DIR (CTest: fetch_data).
set -euo pipefail
SRC=$(cd "${1:?usage: fetch_data_test.sh SOURCE_DIR}" && pwd)
FETCH=$SRC/scripts/fetch-data.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_fail NAME PATTERN CMD...: the command must exit non-zero with PATTERN in its output.
expect_fail() {
  local name=$1 pattern=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then fail "$name: exit 0, expected a failure"; echo "$out"; return; fi
  if ! grep -qF -- "$pattern" <<<"$out"; then fail "$name: message lacks '$pattern'"; echo "$out"; return; fi
  ok "$name (exit $rc)"
}

# --- a fake mirror: four small MNIST archives and a CIFAR-10 archive -----------------------------------------
M=$W/mirror
mkdir -p "$M/mnist" "$M/cifar10" "$W/cifar-src/cifar-10-batches-bin"
SUMS=$W/sums
: > "$SUMS"
for n in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  printf 'fake %s contents\n' "$n" > "$W/$n"
  gzip -n -c "$W/$n" > "$M/mnist/$n.gz"
  echo "$(sha256sum "$W/$n" | cut -d' ' -f1)  mnist/$n" >> "$SUMS"
done
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin batches.meta.txt; do
  printf 'fake %s\n' "$f" > "$W/cifar-src/cifar-10-batches-bin/$f"
done
tar -czf "$M/cifar10/cifar-10-binary.tar.gz" -C "$W/cifar-src" cifar-10-batches-bin
echo "$(sha256sum "$M/cifar10/cifar-10-binary.tar.gz" | cut -d' ' -f1)  cifar10/cifar-10-binary.tar.gz" >> "$SUMS"
export JEBM_DATA_MIRROR=file://$M JEBM_DATA_SUMS=$SUMS

# --- download + verify ------------------------------------------------------------------------------------------
D=$W/data
if out=$("$FETCH" "$D" mnist 2>&1) && cmp -s "$D/mnist/train-images-idx3-ubyte" "$W/train-images-idx3-ubyte" \
   && cmp -s "$D/mnist/t10k-labels-idx1-ubyte" "$W/t10k-labels-idx1-ubyte"; then
  ok "mnist: downloaded, unpacked and verified"
else fail "mnist download"; echo "$out"; fi
if out=$("$FETCH" "$D" cifar10 2>&1) && cmp -s "$D/cifar10/test_batch.bin" "$W/cifar-src/cifar-10-batches-bin/test_batch.bin" \
   && [ -f "$D/cifar10/data_batch_5.bin" ] && [ -f "$D/cifar10/SHA256SUMS" ]; then
  ok "cifar10: downloaded, verified and unpacked"
else fail "cifar10 download"; echo "$out"; fi
if [ -z "$(find "$D" -name '.fetch.*')" ]; then ok "no temporary left behind"; else fail "temporaries left in $D"; fi

# --- skip when present and valid (the mirror is gone, so any download would fail) --------------------------------
mv "$M" "$M.away"
before=$(stat -c %Y.%i "$D/mnist/train-images-idx3-ubyte")
if out=$("$FETCH" "$D" mnist 2>&1) && [ "$(grep -c 'skipped' <<<"$out")" -eq 4 ] \
   && [ "$(stat -c %Y.%i "$D/mnist/train-images-idx3-ubyte")" = "$before" ]; then
  ok "mnist: all four present and valid, skipped"
else fail "mnist skip"; echo "$out"; fi
if out=$("$FETCH" "$D" cifar10 2>&1) && grep -q 'skipped' <<<"$out"; then ok "cifar10: present and valid, skipped"
else fail "cifar10 skip"; echo "$out"; fi
mv "$M.away" "$M"

# --- a damaged file in place is fetched again -------------------------------------------------------------------
echo damaged > "$D/mnist/train-labels-idx1-ubyte"
if out=$("$FETCH" "$D" mnist 2>&1) && cmp -s "$D/mnist/train-labels-idx1-ubyte" "$W/train-labels-idx1-ubyte" \
   && grep -q 'checksum differs' <<<"$out"; then ok "mnist: a damaged file is fetched again"
else fail "mnist refetch"; echo "$out"; fi

# --- a wrong checksum is refused and nothing is written ------------------------------------------------------------
printf 'tampered\n' | gzip -n -c > "$M/mnist/t10k-images-idx3-ubyte.gz"
expect_fail "mnist: wrong checksum refused" "checksum mismatch for t10k-images-idx3-ubyte" "$FETCH" "$W/fresh" mnist
if [ ! -e "$W/fresh/mnist/t10k-images-idx3-ubyte" ]; then ok "mnist: the mismatching file was not written"
else fail "mnist: the mismatching file was written"; fi
printf 'not the archive' > "$M/cifar10/cifar-10-binary.tar.gz"
expect_fail "cifar10: wrong checksum refused" "checksum mismatch" "$FETCH" "$W/fresh" cifar10
if [ -z "$(ls -A "$W/fresh/cifar10")" ]; then ok "cifar10: nothing written"; else fail "cifar10: files written"; fi

# --- no mirror, no network -----------------------------------------------------------------------------------------
expect_fail "missing mirror: clear failure" "could not download file://$W/nowhere/mnist/" \
  env JEBM_DATA_MIRROR="file://$W/nowhere" "$FETCH" "$W/nonet" mnist
if command -v curl >/dev/null || command -v wget >/dev/null; then no_net="Without a network"; else no_net="neither curl nor wget"; fi
expect_fail "unreachable server: clear failure" "$no_net" \
  env JEBM_DATA_MIRROR="http://127.0.0.1:9" "$FETCH" "$W/nonet" cifar10

# --- bad arguments ------------------------------------------------------------------------------------------------
expect_fail "unknown data set" "unknown data set 'svhn'" "$FETCH" "$W/x" svhn
expect_fail "missing argument" "usage:" "$FETCH" "$W/x"

# --- the committed sums against the real MNIST files, when the offline copy is here --------------------------------
REAL=${JEBM_TEST_SHARED_DATA:-}
for cand in "$SRC/../shared/data" "$SRC/shared/data"; do
  [ -z "$REAL" ] && [ -f "$cand/mnist/train-labels-idx1-ubyte.gz" ] && REAL=$cand
done
if [ -n "$REAL" ] && [ -f "$REAL/mnist/train-labels-idx1-ubyte.gz" ]; then
  if out=$(env -u JEBM_DATA_SUMS JEBM_DATA_MIRROR="file://$REAL" "$FETCH" "$W/real" mnist 2>&1); then
    ok "real MNIST files match the committed sums ($REAL)"
  else fail "real MNIST against the committed sums"; echo "$out"; fi
else
  echo "skipped: the real-data case (no offline MNIST copy at ../shared/data; set JEBM_TEST_SHARED_DATA)"
fi

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all fetch-data checks passed"
