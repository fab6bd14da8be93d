#!/usr/bin/env bash
# Sets up a fresh machine (Python 3.10+ and a C/C++ compiler): a virtual environment in .venv with
# edge-extract, its optional extras and the test tools. Safe to run again.
#
# llama-cpp-python has no Linux binary wheel, so packaging/build_llama_wheel.py compiles it once
# (about 3 minutes on 2 cores; portable AVX2 build) and caches the wheel in
# ${EDGE_EXTRACT_BUILD_CACHE:-~/.cache/edge-extract-build}; later runs and CI reuse it. The same
# cache keeps the llama-cpp-python source, whose converter scripts convert/ runs.
#
# Usage: scripts/setup.sh [--runtime-only]   (--runtime-only skips torch and the training tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
EXTRAS="formats,eval,convert,dev"
[ "${1:-}" = "--runtime-only" ] && EXTRAS="formats,dev"
BUILD_CACHE=${EDGE_EXTRACT_BUILD_CACHE:-$HOME/.cache/edge-extract-build}
LLAMA_VERSION=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"

if [ ! -f "$BUILD_CACHE/sdist/llama_cpp_python-$LLAMA_VERSION.tar.gz" ]; then
  echo "setup: downloading the llama-cpp-python $LLAMA_VERSION source"
  $PIP download --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$BUILD_CACHE/sdist"
fi
WHEEL=$(.venv/bin/python packaging/build_llama_wheel.py | tail -n 1)
echo "setup: installing $(basename "$WHEEL") and edge-extract with extras [$EXTRAS]"
$PIP install "$WHEEL"
$PIP install -e ".[$EXTRAS]"
echo "setup: done. Try: .venv/bin/edge-extract extract samples/case_report.txt"
