#!/usr/bin/env bash
# Compares the GEMM / convolution libraries jebm could use, on its own convolution shapes, float32:
#   gemm_compare.cpp: sgemm as jebm's im2col path issues it, in OpenBLAS (with the kernel set this CPU should get,
#     SkylakeX or Haswell, and the generic Prescott one) and in BLIS (the sub-configuration it detects);
#   conv_compare.cpp: oneDNN's convolution primitive (NCHW; its blocked layout, with and without reorders at every
#     call) next to jebm's own conv2d.
# Not part of the CMake build; docs/performance.md "Which GEMM / convolution library (measured)" has its output.
# Needs the Debian packages libopenblas-dev, libblis-dev and libdnnl-dev, and builds jebm_runtime (cmake --preset cpu).
#
# usage: bash scripts/gemm-libraries/run.sh [--threads "1 2"] [--reps 11] [--rounds 1] [--only gemm|conv]
set -euo pipefail

threads="1 2" reps=11 rounds=1 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$only" in ""|gemm|conv) ;; *) echo "run.sh: --only '$only': want gemm or conv" >&2; exit 2 ;; esac
for n in "$reps" "$rounds" $threads; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: '$n': --threads, --reps, --rounds want integers >= 1" >&2; exit 2; }
done

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/gemm-libraries"
arch=$(gcc -print-multiarch)
# Where Debian puts each library; overridable, e.g. to check the message for a missing one.
OPENBLAS_INC=${OPENBLAS_INC:-/usr/include/$arch/openblas-pthread}
OPENBLAS_LIB=${OPENBLAS_LIB:-/usr/lib/$arch/openblas-pthread}
BLIS_INC=${BLIS_INC:-/usr/include/$arch/blis-openmp} BLIS_LIB=${BLIS_LIB:-/usr/lib/$arch/blis-openmp}
DNNL_INC=${DNNL_INC:-/usr/include} DNNL_LIB=${DNNL_LIB:-/usr/lib/$arch}

need() {  # FILE PACKAGE: stop with a message naming the file and the package that provides it
  [ -e "$1" ] || { echo "run.sh: $1 not found: install the Debian package $2 (apt-get install $2)" >&2; exit 1; }
}
need "$OPENBLAS_INC/cblas.h" libopenblas-dev; need "$OPENBLAS_LIB/libopenblas.so" libopenblas-dev
if [ "$only" != conv ]; then need "$BLIS_INC/blis.h" libblis-dev; need "$BLIS_LIB/libblis.so" libblis-dev; fi
if [ "$only" != gemm ]; then
  need "$DNNL_INC/oneapi/dnnl/dnnl.hpp" libdnnl-dev; need "$DNNL_LIB/libdnnl.so" libdnnl-dev
fi

out="$root/build/gemm-libraries"
mkdir -p "$out"
cxx=(g++ -std=c++17 -O2 -fopenmp -I"$here")
stale() {  # OUTPUT INPUTS...: whether OUTPUT is missing or older than an input (then it is rebuilt)
  local o=$1; shift
  [ -e "$o" ] || return 0
  for i in "$@"; do [ "$i" -nt "$o" ] && return 0; done
  return 1
}
if [ "$only" != conv ] && stale "$out/gemm_blis" "$here/gemm_compare.cpp" "$here/timing.hpp" "$0"; then
  "${cxx[@]}" -DUSE_OPENBLAS -isystem "$OPENBLAS_INC" "$here/gemm_compare.cpp" -o "$out/gemm_openblas" \
    -L"$OPENBLAS_LIB" -lopenblas -Wl,-rpath,"$OPENBLAS_LIB"
  "${cxx[@]}" -DUSE_BLIS -isystem "$BLIS_INC" "$here/gemm_compare.cpp" -o "$out/gemm_blis" \
    -L"$BLIS_LIB" -lblis -Wl,-rpath,"$BLIS_LIB"
fi
if [ "$only" != gemm ]; then
  (cd "$root" && cmake --preset cpu >/dev/null && cmake --build --preset cpu -j2 --target jebm_runtime >/dev/null) ||
    { echo "run.sh: building jebm_runtime (cmake --preset cpu) failed" >&2; exit 1; }
  dnnl_inc=(); [ "$DNNL_INC" = /usr/include ] || dnnl_inc=(-isystem "$DNNL_INC")  # (a system dir must stay last)
  if stale "$out/conv_compare" "$here/conv_compare.cpp" "$here/timing.hpp" "$root/build/cpu/libjebm_runtime.a" "$0"
  then
    "${cxx[@]}" -I"$root" "${dnnl_inc[@]}" "$here/conv_compare.cpp" -o "$out/conv_compare" \
      "$root/build/cpu/libjebm_runtime.a" -L"$DNNL_LIB" -ldnnl -L"$OPENBLAS_LIB" -lopenblas -Wl,-rpath,"$OPENBLAS_LIB"
  fi
fi

# The OpenBLAS kernel set this CPU should run (Debian's 0.3.21 falls back to Prescott on CPUs it does not know).
flags="$(grep -m1 '^flags' /proc/cpuinfo) "
best=Prescott
[[ $flags == *" avx2 "* && $flags == *" fma "* ]] && best=Haswell
avx512=1
for f in avx512f avx512bw avx512dq avx512vl avx512cd; do [[ $flags == *" $f "* ]] || avx512=0; done
[ $avx512 = 1 ] && best=SkylakeX

[ -n "${OMP_WAIT_POLICY:-}" ] || export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}  # as the jebm program runs (docs/performance.md)
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC');" \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for t in $threads; do
    if [ "$only" != conv ]; then
      for core in $best Prescott; do OPENBLAS_CORETYPE=$core "$out/gemm_openblas" "$t" "$reps"; done
      BLIS_ARCH_DEBUG=1 "$out/gemm_blis" "$t" "$reps"
    fi
    if [ "$only" != gemm ]; then OPENBLAS_CORETYPE=$best "$out/conv_compare" "$t" "$reps"; fi
  done
done
