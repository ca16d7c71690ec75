#!/usr/bin/env bash
# One-step set-up for jebm on Debian 12 (run as root or with sudo available).
#   scripts/setup.sh main   install what is missing, build (release preset), run the main job (jebm gmm)
#   scripts/setup.sh test   install what is missing, build and run the whole test suite: the release preset
#                           (CUDA code compiled where the toolkit is found) and the ASan+UBSan preset
# Extra arguments after `main` are passed to `jebm gmm`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-main}
shift || true

pkgs=(cmake ninja-build g++ pkg-config libboost-program-options-dev libboost-test-dev libopenblas-dev
      libpng-dev zlib1g-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing missing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

jobs=$(nproc)
case "$mode" in
  main)
    cmake --preset release >/dev/null
    cmake --build --preset release -j "$jobs" --target jebm
    out=${JEBM_OUT:-runs/gmm}
    echo "setup: running: build/release/jebm gmm --out $out --force $*"
    exec build/release/jebm gmm --out "$out" --force "$@"
    ;;
  test)
    cmake --preset release
    cmake --build --preset release -j "$jobs"
    ctest --preset release -j "$jobs"
    # CTest hides the output of passing tests; say plainly what the CUDA suites did on this machine.
    echo "setup: CUDA test suites here (skipped where no CUDA device is present):"
    ctest --preset release -R cuda --verbose 2>&1 | grep -E "skipped: |Test module|test cases? out of" || true
    cmake --preset asan
    cmake --build --preset asan -j "$jobs"
    ctest --preset asan -j "$jobs"
    ;;
  *)
    echo "usage: scripts/setup.sh main|test" >&2; exit 2 ;;
esac
