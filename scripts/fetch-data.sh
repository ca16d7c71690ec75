#!/usr/bin/env bash
# Downloads MNIST or CIFAR-10 from their usual public sources into DIR/mnist or DIR/cifar10, the folders that
# `jebm mnist --data` and `jebm cifar10 --data` read, and checks them against the SHA-256 sums committed in
# scripts/data.sha256. Tested by tests/fetch_data_test.sh (offline, against a file:// mirror it makes).
#
# Usage: scripts/fetch-data.sh DIR mnist|cifar10
#   MNIST:    the four *-ubyte.gz archives, unpacked; the sums are those of the unpacked IDX files.
#   CIFAR-10: cifar-10-binary.tar.gz (sum checked), unpacked into data_batch_1..5.bin, test_batch.bin and
#             batches.meta.txt; the unpacked files' sums are written to DIR/cifar10/SHA256SUMS.
# What is already there and valid is skipped. Files are written under a temporary name and renamed once checked.
# Environment:
#   JEBM_DATA_MIRROR  a base URL used instead of the usual sources, holding mnist/<name>.gz and
#                     cifar10/cifar-10-binary.tar.gz (file:// works; used by the test)
#   JEBM_DATA_SUMS    a sums file used instead of scripts/data.sha256 (same format)
set -euo pipefail

usage() { echo "usage: scripts/fetch-data.sh DIR mnist|cifar10" >&2; exit 2; }
die() { echo "fetch-data: $*" >&2; exit 1; }
[ $# -eq 2 ] || usage
DIR=$1 SET=$2
case "$SET" in mnist|cifar10) ;; *) echo "fetch-data: unknown data set '$SET' (expected mnist or cifar10)" >&2; usage ;; esac

SUMS=${JEBM_DATA_SUMS:-$(cd "$(dirname "$0")" && pwd)/data.sha256}
[ -r "$SUMS" ] || die "cannot read the sums file $SUMS"
MNIST_URL=https://ossci-datasets.s3.amazonaws.com/mnist
CIFAR_URL=https://www.cs.toronto.edu/~kriz
if [ -n "${JEBM_DATA_MIRROR:-}" ]; then
  MNIST_URL=${JEBM_DATA_MIRROR%/}/mnist
  CIFAR_URL=${JEBM_DATA_MIRROR%/}/cifar10
fi

command -v sha256sum >/dev/null || die "sha256sum not found (Debian: apt-get install coreutils)"

# The committed sum of KEY (e.g. mnist/train-images-idx3-ubyte), or a message naming the sums file.
expected_sum() {
  local s
  s=$(awk -v k="$1" '$2 == k { print $1 }' "$SUMS")
  [ -n "$s" ] || die "$SUMS has no sum for $1"
  echo "$s"
}
sum_of() { sha256sum "$1" | cut -d' ' -f1; }

# download URL FILE (file://, or http(s) with curl or wget): fails with a message that says what was tried and
# what to do without a network.
download() {
  local url=$1 out=$2 err
  if [[ $url == file://* ]]; then
    err=$(cp -- "${url#file://}" "$out" 2>&1) || { rm -f "$out"; die "could not download $url: $err"; }
    return
  fi
  if command -v curl >/dev/null; then
    err=$(curl --fail --silent --show-error --location --connect-timeout 20 --retry 2 -o "$out" "$url" 2>&1) && return
  elif command -v wget >/dev/null; then
    err=$(wget --quiet --tries=3 --timeout=20 -O "$out" "$url" 2>&1) && return
    err=${err:-wget failed}
  else
    die "neither curl nor wget is installed to download $url (Debian: apt-get install curl)"
  fi
  rm -f "$out"
  die "could not download $url: ${err:-unknown error}
  Without a network: copy the files into $DIR/$SET by hand, or point JEBM_DATA_MIRROR at a copy of the sources."
}

mkdir -p "$DIR/$SET" || die "cannot create $DIR/$SET"
TMP=$(mktemp -d "$DIR/$SET/.fetch.XXXXXX") || die "cannot write into $DIR/$SET"
trap 'rm -rf "$TMP"' EXIT

fetch_mnist() {
  local name key want have
  for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    key=mnist/$name
    want=$(expected_sum "$key")
    if [ -f "$DIR/$key" ] && [ "$(sum_of "$DIR/$key")" = "$want" ]; then
      echo "fetch-data: $DIR/$key: present, checksum OK, skipped"
      continue
    fi
    [ -e "$DIR/$key" ] && echo "fetch-data: $DIR/$key: present but its checksum differs, fetching it again"
    echo "fetch-data: downloading $MNIST_URL/$name.gz"
    download "$MNIST_URL/$name.gz" "$TMP/$name.gz"
    gzip -dc "$TMP/$name.gz" > "$TMP/$name" 2>/dev/null || die "$MNIST_URL/$name.gz is not a gzip file"
    have=$(sum_of "$TMP/$name")
    [ "$have" = "$want" ] || die "$MNIST_URL/$name.gz: checksum mismatch for $name (got $have, $SUMS says $want); nothing written"
    mv -f "$TMP/$name" "$DIR/$key"
    echo "fetch-data: $DIR/$key: checksum OK"
  done
}

CIFAR_FILES="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin batches.meta.txt"

fetch_cifar10() {
  local out=$DIR/cifar10 archive=cifar-10-binary.tar.gz want have f
  if [ -f "$out/SHA256SUMS" ] && (cd "$out" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
    echo "fetch-data: $out: present, checksums OK (its SHA256SUMS), skipped"
    return
  fi
  want=$(expected_sum "cifar10/$archive")
  echo "fetch-data: downloading $CIFAR_URL/$archive (163 MB)"
  download "$CIFAR_URL/$archive" "$TMP/$archive"
  have=$(sum_of "$TMP/$archive")
  [ "$have" = "$want" ] || die "$CIFAR_URL/$archive: checksum mismatch (got $have, $SUMS says $want); nothing written"
  tar -xzf "$TMP/$archive" -C "$TMP" || die "$CIFAR_URL/$archive: not a readable tar.gz archive"
  for f in $CIFAR_FILES; do
    [ -f "$TMP/cifar-10-batches-bin/$f" ] || die "$CIFAR_URL/$archive has no cifar-10-batches-bin/$f; nothing written"
  done
  (cd "$TMP/cifar-10-batches-bin" && sha256sum $CIFAR_FILES) > "$TMP/SHA256SUMS"
  for f in $CIFAR_FILES; do mv -f "$TMP/cifar-10-batches-bin/$f" "$out/$f"; done
  mv -f "$TMP/SHA256SUMS" "$out/SHA256SUMS"
  echo "fetch-data: $out: unpacked $CIFAR_FILES, checksum of the archive OK"
}

"fetch_$SET"
echo "fetch-data: done; use --data $DIR/$SET"
