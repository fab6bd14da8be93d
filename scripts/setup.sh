#!/usr/bin/env bash
# Sets up a fresh machine (Python 3.10+ and a C/C++ compiler): a virtual environment in .venv with
# edge-extract, its optional extras and the test tools. Safe to run again.
#
# llama-cpp-python has no Linux binary wheel, so it is compiled once (about 3 minutes on 2 cores)
# and the wheel is cached in $EDGE_EXTRACT_BUILD_CACHE; later runs and CI reuse it.
# The build is portable (AVX2 baseline, GGML_NATIVE=OFF): a native build is faster on prompts
# but crashes on CPUs without the instructions of the machine that built it.
#
# Usage: scripts/setup.sh [--runtime-only]   (--runtime-only skips torch and the training tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
BUILD_CACHE=${EDGE_EXTRACT_BUILD_CACHE:-$HOME/.cache/edge-extract-build}
FLAVOUR=portable-avx2
CMAKE_FLAGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
EXTRAS="formats,eval,convert,dev"
[ "${1:-}" = "--runtime-only" ] && EXTRAS="formats,dev"

SDIST="$BUILD_CACHE/sdist/llama_cpp_python-$LLAMA_VERSION.tar.gz"
WHEEL_DIR="$BUILD_CACHE/wheels/$FLAVOUR"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"

if [ ! -f "$SDIST" ]; then
  echo "setup: downloading the llama-cpp-python $LLAMA_VERSION source"
  $PIP download --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$BUILD_CACHE/sdist"
fi
if ! ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "setup: compiling llama-cpp-python $LLAMA_VERSION ($FLAVOUR, a few minutes; cached afterwards)"
  mkdir -p "$WHEEL_DIR"
  CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc 2>/dev/null || echo 2) \
    $PIP wheel --no-deps -w "$WHEEL_DIR" "$SDIST"
fi
echo "setup: installing edge-extract with extras [$EXTRAS]"
$PIP install "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
$PIP install -e ".[$EXTRAS]" 2> >(grep -v "^WARNING: Location" >&2)
echo "setup: done. Try: .venv/bin/edge-extract extract samples/case_report.txt"
